import { useEffect, useState } from 'react';
import { AuthManager, type StoredSession } from './api';
import { AuthScreen } from './components/AuthScreen';
import { ChatApp } from './components/ChatApp';
import { inviteTokenFromPath } from './router';

const auth = new AuthManager();

export function App() {
  const [session, setSession] = useState<StoredSession | null>(auth.session);
  useEffect(() => auth.subscribe(setSession), []);
  if (!session) {
    // An invite link opened signed out: sign in or sign up first, then the landing page.
    const invited = inviteTokenFromPath(window.location.pathname) !== null;
    return (
      <AuthScreen
        auth={auth}
        intro={invited ? 'You were invited to a room. Log in or create an account to join it.' : undefined}
      />
    );
  }
  return <ChatApp key={session.user.id} auth={auth} />;
}
