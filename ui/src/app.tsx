// The app shell: tenant gate, header with theme and lock, the sync bar, role navigation and routes.

import { useEffect, useState } from 'preact/hooks';
import { AppProvider, useApp } from './context';
import type { Backend } from './lib/backend';
import { SyncBar } from './components/SyncBar';
import { Logo } from './components/Logo';
import { label } from './lib/format';
import { homeRoute, navFor, routeAllowed } from './lib/roles';
import { navigate, useRoute } from './lib/route';
import { applyTheme, loadTheme, saveTheme, type Theme } from './lib/theme';
import { TenantScreen } from './screens/TenantScreen';
import { SignInScreen } from './screens/SignInScreen';
import { PropertiesScreen } from './screens/PropertiesScreen';
import { PropertyPage } from './screens/PropertyPage';
import { InboxScreen } from './screens/InboxScreen';
import { CrewDayScreen, SyncHealthScreen, TerritoriesScreen } from './screens/ChiefScreens';
import { ExperimentScreen, ModelHealthScreen, PeopleScreen, StormsScreen, UsageScreen } from './screens/OfficeScreens';

export function App({ backend }: { backend: Backend }) {
  return (
    <AppProvider backend={backend}>
      <Gate />
    </AppProvider>
  );
}

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(loadTheme);
  useEffect(() => applyTheme(theme), [theme]);
  const toggle = () =>
    setTheme((t) => {
      const next = t === 'contrast' ? 'standard' : 'contrast';
      saveTheme(next);
      return next;
    });
  return [theme, toggle];
}

function useGlobalKeys() {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
      const search = document.getElementById('search') as HTMLInputElement | null;
      if (search) {
        e.preventDefault();
        search.focus();
        search.select();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}

function Gate() {
  const { backend, session, setSession } = useApp();
  const [checked, setChecked] = useState(false);
  const [theme, toggleTheme] = useTheme();
  useGlobalKeys();
  useEffect(() => {
    backend
      .current_session({})
      .then((s) => s && setSession(s))
      .catch(() => undefined)
      .finally(() => setChecked(true));
  }, [backend]);
  if (!checked) return null;
  if (!session) {
    return (
      <>
        <ThemeToggle theme={theme} onToggle={toggleTheme} floating />
        <TenantScreen />
      </>
    );
  }
  return <Shell theme={theme} toggleTheme={toggleTheme} />;
}

function ThemeToggle({ theme, onToggle, floating }: { theme: Theme; onToggle(): void; floating?: boolean }) {
  return (
    <button type="button" class={`btn btn-ghost theme-toggle${floating ? ' floating' : ''}`} aria-pressed={theme === 'contrast'} onClick={onToggle} title="High-contrast theme for bright sunlight">
      ☀ {theme === 'contrast' ? 'Sunlight on' : 'Sunlight'}
    </button>
  );
}

function Shell({ theme, toggleTheme }: { theme: Theme; toggleTheme(): void }) {
  const { backend, session, setSession, toastError } = useApp();
  const route = useRoute();
  const role = session?.role ?? null;

  useEffect(() => {
    if (!role) return;
    if (route.name === 'sign-in') return;
    if (!route.name || !routeAllowed(role, route.name)) navigate(homeRoute(role));
  }, [role, route.name]);

  useEffect(() => {
    // Focus the page heading on navigation so keyboard and screen-reader users land on the content.
    const h = document.querySelector<HTMLElement>('main h1');
    if (h) {
      h.tabIndex = -1;
      h.focus({ preventScroll: true });
    }
  }, [route.name, route.param]);

  const lock = () =>
    backend
      .lock({})
      .then(() => {
        setSession(null);
        history.replaceState(null, '', location.pathname + location.search);
      })
      .catch(toastError);

  let page;
  if (!role || route.name === 'sign-in') page = <SignInScreen />;
  else if (route.name === 'property' && route.param) page = <PropertyPage id={route.param} key={route.param} />;
  else if (route.name === 'properties') page = <PropertiesScreen />;
  else if (route.name === 'inbox') page = <InboxScreen />;
  else if (route.name === 'crew-day') page = <CrewDayScreen />;
  else if (route.name === 'territories') page = <TerritoriesScreen />;
  else if (route.name === 'sync-health') page = <SyncHealthScreen />;
  else if (route.name === 'storms') page = <StormsScreen />;
  else if (route.name === 'people') page = <PeopleScreen />;
  else if (route.name === 'experiment') page = <ExperimentScreen />;
  else if (route.name === 'model-health') page = <ModelHealthScreen />;
  else if (route.name === 'usage') page = <UsageScreen />;
  else page = null;

  const current = route.name === 'property' ? 'properties' : route.name;
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <div class="brand">
          <Logo />
          <span>StormOps Field</span>
        </div>
        <div class="topbar-tenant">
          <strong>{session?.tenant_name}</strong>
          <span class="muted">
            {session?.user}
            {role ? ` · ${label(role)}` : ' · not signed in'}
          </span>
        </div>
        <span class="topbar-spacer" />
        {backend.kind === 'mock' && <span class="badge badge-mock" title="Running in a browser with demo data">Demo data</span>}
        <ThemeToggle theme={theme} onToggle={toggleTheme} />
        <button type="button" class="btn btn-ghost" onClick={lock}>
          Lock
        </button>
      </header>
      <SyncBar />
      <div class="body">
        {role && (
          <nav class="sidenav" aria-label="Main">
            <ul>
              {navFor(role).map((n) => (
                <li key={n.route}>
                  <a href={`#/${n.route}`} aria-current={current === n.route ? 'page' : undefined} class={current === n.route ? 'active' : ''}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
            {role === 'viewer' && <p class="nav-note">Read-only: dashboards only.</p>}
          </nav>
        )}
        <main id="main" class="main">
          {page}
        </main>
      </div>
    </div>
  );
}
