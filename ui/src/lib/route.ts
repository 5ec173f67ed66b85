// A tiny hash router: `#/properties`, `#/property/<id>`, `#/inbox`, ... parsed into a name and a param.

import { useEffect, useState } from 'preact/hooks';

export interface Route {
  name: string;
  param: string | null;
}

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#\/?/, '');
  const [name = '', param = null] = path.split('/');
  return { name, param: param ? decodeURIComponent(param) : null };
}

export function navigate(name: string, param?: string) {
  const next = `#/${name}${param ? `/${encodeURIComponent(param)}` : ''}`;
  if (location.hash !== next) location.hash = next;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
