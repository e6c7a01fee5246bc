import { useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { ChatClient, RestClient, defaultSocketUrl, pageTitle, type AuthManager, type ConnState } from '../api';
import { logOut } from '../pwa/pwa';
import { inviteTokenFromPath, roomIdFromPath, usePath } from '../router';
import { AccountPage, PeopleSearch, UserProfilePage, userIdFromPath, usePresenceReporter } from './Account';
import { ChatView } from './ChatView';
import { InviteLanding, NotificationBell, Notices, ProfilePage, StartDirect } from './People';
import { BrowseRooms, CreateRoom, JoinPrivateRoom } from './RoomForms';
import { SearchPage } from './Search';
import { Sidebar } from './Sidebar';

const CONN_LABEL: Record<ConnState, string> = {
  connecting: 'Connecting…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
  offline: 'Offline — waiting for network',
  stopped: 'Disconnected',
};

export function ChatApp({ auth }: { auth: AuthManager }) {
  const client = useMemo(
    () => new ChatClient({ auth, rest: new RestClient(auth), socketUrl: defaultSocketUrl() }),
    [auth],
  );
  useSyncExternalStore(client.subscribe, client.getVersion);
  const [path, navigate] = usePath();
  const [loadError, setLoadError] = useState<string | null>(null);
  const roomId = roomIdFromPath(path);
  const inviteToken = inviteTokenFromPath(path);
  const profileId = userIdFromPath(path);
  usePresenceReporter(client);

  useEffect(() => {
    client.start().catch((err) => setLoadError(err instanceof Error ? err.message : String(err)));
    const offline = () => client.networkLost();
    const online = () => client.networkBack();
    const visible = () => {
      if (document.visibilityState === 'visible') {
        if (client.activeRoomId !== null) client.markRead(client.activeRoomId);
        client.networkBack();
      }
    };
    window.addEventListener('offline', offline);
    window.addEventListener('online', online);
    document.addEventListener('visibilitychange', visible);
    return () => {
      window.removeEventListener('offline', offline);
      window.removeEventListener('online', online);
      document.removeEventListener('visibilitychange', visible);
      client.stop();
    };
  }, [client]);

  useEffect(() => {
    client.open(roomId);
  }, [client, roomId]);

  // The page title shows what is unread everywhere.
  const total = client.totalUnread();
  useEffect(() => {
    document.title = pageTitle(total);
  }, [total]);
  useEffect(() => () => void (document.title = pageTitle(0)), []);

  // Removed from the open room (kicked, banned, deleted): its view closes; a notice says why.
  const close = client.closeRequested;
  useEffect(() => {
    if (close === null) return;
    client.closeRequested = null;
    if (close === roomId) navigate('/');
  }, [client, close, roomId, navigate]);

  const me = client.me;
  const main = (() => {
    if (path === '/browse') return <BrowseRooms client={client} navigate={navigate} />;
    if (path === '/new') return <CreateRoom client={client} navigate={navigate} />;
    if (path === '/join') return <JoinPrivateRoom client={client} navigate={navigate} />;
    if (path === '/dm') return <StartDirect client={client} navigate={navigate} />;
    if (path === '/search') return <SearchPage client={client} navigate={navigate} />;
    if (path === '/profile') return <ProfilePage client={client} navigate={navigate} />;
    if (path === '/account') return <AccountPage client={client} navigate={navigate} />;
    if (path === '/people') return <PeopleSearch client={client} navigate={navigate} />;
    if (profileId !== null) return <UserProfilePage client={client} userId={profileId} navigate={navigate} />;
    if (inviteToken !== null) return <InviteLanding client={client} token={inviteToken} navigate={navigate} />;
    if (roomId !== null) return <ChatView key={roomId} client={client} roomId={roomId} navigate={navigate} />;
    return (
      <section className="empty-state" aria-label="Welcome">
        <h2>Welcome{me ? `, ${me.username}` : ''}!</h2>
        <p>Pick a room on the left, browse public rooms, or create your own.</p>
        <div className="actions">
          <button className="primary" onClick={() => navigate('/browse')}>Browse rooms</button>
          <button onClick={() => navigate('/new')}>Create a room</button>
        </div>
      </section>
    );
  })();

  return (
    <div className="app" data-view={path === '/' ? 'list' : 'main'}>
      <header className="topbar">
        <a
          className="brand"
          href="/"
          aria-label="Socket-Hub"
          onClick={(e) => {
            e.preventDefault();
            navigate('/');
          }}
        >
          <span className="logo" aria-hidden="true">●</span>
          <span className="brand-name">Socket-Hub</span>
        </a>
        <span className={`conn conn-${client.conn}`} role="status" aria-live="polite" data-testid="connection-status">
          <span className="dot" aria-hidden="true" />
          <span className="conn-label">{CONN_LABEL[client.conn]}</span>
        </span>
        <span className="spacer" />
        <NotificationBell client={client} navigate={navigate} />
        {me && (
          <button
            className="ghost me"
            data-testid="me"
            title={`Logged in as ${me.username}: edit your profile`}
            aria-current={path === '/profile' ? 'page' : undefined}
            onClick={() => navigate('/profile')}
          >
            <span className="sr-only">My profile, logged in as </span>
            {me.username}
          </button>
        )}
        <button className="ghost" onClick={() => void logOut({ auth, client })}>
          Log out
        </button>
      </header>
      <Sidebar client={client} activeRoomId={roomId} navigate={navigate} path={path} />
      <main className="main">
        {loadError && (
          <p className="error banner" role="alert">
            Could not load your rooms: {loadError}
          </p>
        )}
        {main}
      </main>
      <Notices client={client} />
    </div>
  );
}
