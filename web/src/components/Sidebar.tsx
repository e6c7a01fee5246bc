import type { ChatClient, RoomId } from '../api';
import { RoomIcon } from './Icons';

export function Sidebar({
  client,
  activeRoomId,
  navigate,
  path,
}: {
  client: ChatClient;
  activeRoomId: RoomId | null;
  navigate: (to: string) => void;
  path: string;
}) {
  const rooms = client.myRooms();
  const directs = client.myDirects();
  return (
    <nav className="sidebar" aria-label="Rooms">
      <div className="sidebar-actions">
        <button className={path === '/browse' ? 'active' : ''} onClick={() => navigate('/browse')}>
          Browse rooms
        </button>
        <button className={path === '/new' ? 'active' : ''} onClick={() => navigate('/new')}>
          New room
        </button>
        <button className={path === '/join' ? 'active' : ''} onClick={() => navigate('/join')}>
          Join private room
        </button>
        <button className={path === '/dm' ? 'active' : ''} onClick={() => navigate('/dm')}>
          New direct message
        </button>
      </div>
      <h2 className="sidebar-title">My rooms</h2>
      {rooms.length === 0 ? (
        <p className="muted small">You have not joined any room yet.</p>
      ) : (
        <ul className="room-list">
          {rooms.map(({ room }) => {
            const unread = room.id === activeRoomId ? 0 : client.unread(room.id);
            return (
              <li key={room.id}>
                <a
                  href={`/rooms/${room.id}`}
                  className={room.id === activeRoomId ? 'room-link active' : 'room-link'}
                  aria-current={room.id === activeRoomId ? 'page' : undefined}
                  aria-label={`${room.name}${room.is_private ? ' (private)' : ''}${unread ? `, ${unread} unread` : ''}`}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(`/rooms/${room.id}`);
                  }}
                >
                  <span className="room-name">
                    <RoomIcon isPrivate={room.is_private} /> {room.name}
                  </span>
                  {unread > 0 && (
                    <span className="badge" data-testid="unread" aria-hidden="true">
                      {unread > 99 ? '99+' : unread}
                    </span>
                  )}
                </a>
              </li>
            );
          })}
        </ul>
      )}
      <h2 className="sidebar-title">Direct messages</h2>
      {directs.length === 0 ? (
        <p className="muted small">No conversations yet.</p>
      ) : (
        <ul className="room-list" aria-label="Direct messages">
          {directs.map(({ room }) => {
            const unread = room.id === activeRoomId ? 0 : client.unread(room.id);
            const name = client.displayName(room.id);
            return (
              <li key={room.id}>
                <a
                  href={`/rooms/${room.id}`}
                  className={room.id === activeRoomId ? 'room-link active' : 'room-link'}
                  aria-current={room.id === activeRoomId ? 'page' : undefined}
                  aria-label={`Direct message with ${name}${unread ? `, ${unread} unread` : ''}`}
                  data-testid="dm-link"
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(`/rooms/${room.id}`);
                  }}
                >
                  <span className="room-name">
                    <span className="room-icon" aria-hidden="true">@</span> {name}
                  </span>
                  {unread > 0 && (
                    <span className="badge" data-testid="unread" aria-hidden="true">
                      {unread > 99 ? '99+' : unread}
                    </span>
                  )}
                </a>
              </li>
            );
          })}
        </ul>
      )}
    </nav>
  );
}
