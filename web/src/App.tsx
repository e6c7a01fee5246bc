import { useEffect, useState } from 'react';
import { AuthManager, type StoredSession } from './api';
import { AuthScreen } from './components/AuthScreen';
import { ChatApp } from './components/ChatApp';

const auth = new AuthManager();

export function App() {
  const [session, setSession] = useState<StoredSession | null>(auth.session);
  useEffect(() => auth.subscribe(setSession), []);
  if (!session) return <AuthScreen auth={auth} />;
  return <ChatApp key={session.user.id} auth={auth} />;
}
