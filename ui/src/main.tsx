// Entry point: picks the bridge (Tauri or mock), applies the saved theme and mounts the app.

import { render } from 'preact';
import { App } from './app';
import { selectBackend } from './lib/backend';
import { applyTheme, loadTheme } from './lib/theme';
import './styles.css';

applyTheme(loadTheme());
void selectBackend().then((backend) => {
  // Exposed for browser tests and the console in demo mode only.
  if (backend.kind === 'mock') (window as unknown as { __stormops?: unknown }).__stormops = backend;
  render(<App backend={backend} />, document.getElementById('app') as HTMLElement);
});
