import { createRoot } from 'react-dom/client';
import { App } from './App';
import { registerServiceWorker } from './pwa/pwa';
import './styles.css';

const root = document.getElementById('root');
if (root) createRoot(root).render(<App />);
registerServiceWorker();
