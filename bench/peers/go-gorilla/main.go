// Command go-gorilla-hub is a minimal chat hub on gorilla/websocket, speaking the bench
// peer protocol (../README.md). It follows the classic gorilla design: one read pump
// and one write pump goroutine per connection, joined by a buffered send channel.
// It keeps nothing: rooms are in-memory sets of live connections.
//
// Build offline (Debian packages golang-go, golang-github-gorilla-websocket-dev):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o go-gorilla-hub .
//
// Run: ./go-gorilla-hub -port 9002 (or PORT=9002); binds 127.0.0.1 only.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 64 * 1024
	sendBuffer     = 256
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// client is one connection: the read pump parses frames, the write pump owns writes.
type client struct {
	hub   *hub
	conn  *websocket.Conn
	user  string
	send  chan []byte
	rooms map[string]bool // touched by the read pump only
}

// hub maps room names to their members.
type hub struct {
	mu    sync.RWMutex
	rooms map[string]map[*client]bool
}

func (h *hub) join(c *client, room string) {
	h.mu.Lock()
	members := h.rooms[room]
	if members == nil {
		members = make(map[*client]bool)
		h.rooms[room] = members
	}
	members[c] = true
	h.mu.Unlock()
	c.rooms[room] = true
}

func (h *hub) leaveAll(c *client) {
	h.mu.Lock()
	for room := range c.rooms {
		if members := h.rooms[room]; members != nil {
			delete(members, c)
			if len(members) == 0 {
				delete(h.rooms, room)
			}
		}
	}
	h.mu.Unlock()
}

// broadcast queues text for every member of room; a member whose queue is full is
// too slow and is dropped (its write pump closes the socket).
func (h *hub) broadcast(room string, text []byte) {
	var slow []*client
	h.mu.RLock()
	for member := range h.rooms[room] {
		select {
		case member.send <- text:
		default:
			slow = append(slow, member)
		}
	}
	h.mu.RUnlock()
	for _, c := range slow {
		c.conn.Close()
	}
}

type inFrame struct {
	Type string `json:"type"`
	Room string `json:"room"`
	ID   string `json:"id"`
	Body string `json:"body"`
}

type joinedFrame struct {
	Type string `json:"type"`
	Room string `json:"room"`
}

type msgFrame struct {
	Type string `json:"type"`
	Room string `json:"room"`
	From string `json:"from"`
	ID   string `json:"id"`
	Body string `json:"body"`
}

type ackFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type errorFrame struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

func (c *client) reply(v interface{}) {
	text, err := json.Marshal(v)
	if err != nil {
		return
	}
	select {
	case c.send <- text:
	default:
		c.conn.Close()
	}
}

func (c *client) readPump() {
	defer func() {
		c.hub.leaveAll(c)
		close(c.send)
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		c.conn.SetReadDeadline(time.Now().Add(pongWait))
		return nil
	})
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(pongWait))
		if kind != websocket.TextMessage {
			continue
		}
		var frame inFrame
		if err := json.Unmarshal(data, &frame); err != nil {
			c.reply(errorFrame{Type: "error", Error: "malformed_json"})
			continue
		}
		switch frame.Type {
		case "join":
			c.hub.join(c, frame.Room)
			c.reply(joinedFrame{Type: "joined", Room: frame.Room})
		case "send":
			if !c.rooms[frame.Room] {
				c.reply(errorFrame{Type: "error", ID: frame.ID, Error: "not_joined"})
				continue
			}
			// Serialize once, queue for every member (sender included).
			text, err := json.Marshal(msgFrame{Type: "msg", Room: frame.Room, From: c.user, ID: frame.ID, Body: frame.Body})
			if err != nil {
				continue
			}
			c.hub.broadcast(frame.Room, text)
			c.reply(ackFrame{Type: "ack", ID: frame.ID})
		default:
			c.reply(errorFrame{Type: "error", Error: "unknown_type"})
		}
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case text, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, text); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func serveWs(h *hub, w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		user = "anonymous"
	}
	c := &client{hub: h, conn: conn, user: user, send: make(chan []byte, sendBuffer), rooms: make(map[string]bool)}
	go c.writePump()
	go c.readPump()
}

func main() {
	defaultPort := 9002
	if env := os.Getenv("PORT"); env != "" {
		p, err := strconv.Atoi(env)
		if err != nil {
			log.Fatalf("invalid PORT %q", env)
		}
		defaultPort = p
	}
	port := flag.Int("port", defaultPort, "TCP port to listen on (127.0.0.1 only)")
	flag.Parse()

	h := &hub{rooms: make(map[string]map[*client]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveWs(h, w, r) })

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go-gorilla hub listening on %s\n", listener.Addr())
	log.Fatal(http.Serve(listener, mux))
}
