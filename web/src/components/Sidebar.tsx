import type { ChatClient, RoomId, RoomState } from '../api';
import { PresenceDot } from './Account';
import { DirectIcon, RoomIcon } from './Icons';
import { SearchBox } from './Search';

type Nav = (to: string) => void;

/** One entry of the room or DM list: its name, unread badge, and a link to it. */
function RoomLink({
  client,
  state,
  activeRoomId,
  navigate,
}: {
  client: ChatClient;
  state: RoomState;
  activeRoomId: RoomId | null;
  navigate: Nav;
}) {
  const { room } = state;
  const active = room.id === activeRoomId;
  const unread = active ? 0 : client.unread(room.id);
  const name = client.displayName(room.id);
  const label = room.is_direct ? `Direct message with ${name}` : `${name}${room.is_private ? ' (private)' : ''}`;
  return (
    <li>
      <a
        href={`/rooms/${room.id}`}
        className={active ? 'room-link active' : 'room-link'}
        aria-current={active ? 'page' : undefined}
        aria-label={`${label}${unread ? `, ${unread} unread` : ''}`}
        data-testid={room.is_direct ? 'dm-link' : undefined}
        onClick={(e) => {
          e.preventDefault();
          navigate(`/rooms/${room.id}`);
        }}
      >
        <span className="room-name">
          {room.is_direct ? <DirectIcon /> : <RoomIcon isPrivate={room.is_private} />} 
          {name}
          {room.is_direct && client.peers.get(room.id) && <PresenceDot client={client} userId={client.peers.get(room.id)!.id} />}
        </span>
        {unread > 0 && (
          <span className="badge" data-testid="unread" aria-hidden="true">
            {unread > 99 ? '99+' : unread}
          </span>
        )}
      </a>
    </li>
  );
}

export function Sidebar({
  client,
  activeRoomId,
  navigate,
  path,
}: {
  client: ChatClient;
  activeRoomId: RoomId | null;
  navigate: Nav;
  path: string;
}) {
  const rooms = client.myRooms();
  const directs = client.myDirects();
  const link = (r: RoomState) => (
    <RoomLink key={r.room.id} client={client} state={r} activeRoomId={activeRoomId} navigate={navigate} />
  );
  return (
    <nav className="sidebar" aria-label="Rooms">
      <SearchBox client={client} navigate={navigate} />
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
        <button className={path === '/people' ? 'active' : ''} onClick={() => navigate('/people')}>
          Find people
        </button>
      </div>
      <h2 className="sidebar-title">My rooms</h2>
      {rooms.length === 0 ? (
        <p className="muted small">You have not joined any room yet.</p>
      ) : (
        <ul className="room-list">{rooms.map(link)}</ul>
      )}
      <h2 className="sidebar-title">Direct messages</h2>
      {directs.length === 0 ? (
        <p className="muted small">No conversations yet.</p>
      ) : (
        <ul className="room-list" aria-label="Direct messages">
          {directs.map(link)}
        </ul>
      )}
    </nav>
  );
}
