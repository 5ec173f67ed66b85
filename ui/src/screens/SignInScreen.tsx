// Sign this laptop in to the company's server: the role, properties and scores come from there.

import { useState } from 'preact/hooks';
import { useApp } from '../context';
import { ErrorNote, PageHeader } from '../components/common';
import { navigate } from '../lib/route';
import { homeRoute } from '../lib/roles';
import { useFocusOnMount } from '../lib/focus';

export function SignInScreen() {
  const { backend, session, setSession, toast } = useApp();
  const [server, setServer] = useState(session?.server_url ?? 'https://api.stormops.example');
  const [slug, setSlug] = useState(() => (session?.tenant_name ?? '').toLowerCase().replace(/&/g, ' and ').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''));
  const [email, setEmail] = useState('');
  const emailRef = useFocusOnMount<HTMLInputElement>();
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await backend.sign_in({ server_url: server.trim(), tenant_slug: slug.trim(), email: email.trim(), password });
      setSession(s);
      toast('Signed in. Your properties and scores will sync now.');
      backend.sync_now({}).catch(() => undefined);
      if (s.role) navigate(homeRoute(s.role));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="page narrow">
      <PageHeader title="Sign in to your company's server" subtitle="Needed once per laptop, and again when a sign-in expires. Work done offline is kept meanwhile." />
      <form class="form card" onSubmit={submit}>
        <label class="field">
          <span>Server address</span>
          <input name="server_url" type="url" value={server} onInput={(e) => setServer(e.currentTarget.value)} required />
        </label>
        <label class="field">
          <span>Company ID</span>
          <input name="tenant_slug" value={slug} onInput={(e) => setSlug(e.currentTarget.value)} required />
        </label>
        <label class="field">
          <span>Email</span>
          <input ref={emailRef} name="email" type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} required autoComplete="email" />
        </label>
        <label class="field">
          <span>Password</span>
          <input name="password" type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required autoComplete="current-password" />
        </label>
        <ErrorNote error={error} />
        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
      </form>
    </section>
  );
}
