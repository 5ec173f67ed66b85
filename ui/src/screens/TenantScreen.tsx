// Choose a company (tenant) file, create one (with the once-only recovery key step), and unlock it.

import { useEffect, useState } from 'preact/hooks';
import { useApp } from '../context';
import type { TenantEntry } from '../lib/backend/types';
import { ErrorNote } from '../components/common';
import { Logo } from '../components/Logo';
import { formatDate, groupRecoveryKey } from '../lib/format';
import { DEMO_PASSPHRASE, PRESET_USER, type MockPreset } from '../lib/backend/presets';
import { mockPresetFromUrl } from '../lib/backend';
import { useFocusOnMount } from '../lib/focus';

type Step = { kind: 'choose' } | { kind: 'create' } | { kind: 'recovery'; tenant: TenantEntry; key: string; user: string } | { kind: 'unlock'; tenant: TenantEntry; user: string };

export function TenantScreen() {
  const { backend } = useApp();
  const [tenants, setTenants] = useState<TenantEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [step, setStep] = useState<Step>({ kind: 'choose' });

  useEffect(() => {
    backend
      .list_tenants({})
      .then((t) => {
        setTenants(t);
        if (t.length === 0) setStep({ kind: 'create' });
      })
      .catch(setError);
  }, [backend, step.kind === 'choose']);

  const preset: MockPreset | null = backend.kind === 'mock' ? (mockPresetFromUrl(location.search) ?? 'field') : null;
  const suggestedUser = preset ? PRESET_USER[preset] : '';

  return (
    <main class="auth-page" id="main">
      <div class="auth-card">
        <div class="brand brand-large">
          <Logo />
          <span>StormOps Field</span>
        </div>
        {step.kind === 'choose' && (
          <section aria-labelledby="choose-title">
            <h1 id="choose-title">Open a company file</h1>
            <p class="muted">Each company's work is kept in its own encrypted file on this laptop.</p>
            <ErrorNote error={error} />
            {tenants === null && !error && <p class="muted">Looking for company files…</p>}
            <ul class="tenant-list">
              {tenants?.map((t) => (
                <li key={t.tenant_id}>
                  <button type="button" class="tenant-btn" onClick={() => setStep({ kind: 'unlock', tenant: t, user: suggestedUser })}>
                    <strong>{t.name}</strong>
                    <span class="muted">Created {formatDate(t.created_at)}</span>
                  </button>
                </li>
              ))}
            </ul>
            <button type="button" class="btn btn-secondary btn-block" onClick={() => setStep({ kind: 'create' })}>
              Create a company file
            </button>
          </section>
        )}
        {step.kind === 'create' && (
          <CreateTenant
            canGoBack={(tenants?.length ?? 0) > 0}
            onBack={() => setStep({ kind: 'choose' })}
            onCreated={(tenant, key, user) => setStep({ kind: 'recovery', tenant, key, user })}
          />
        )}
        {step.kind === 'recovery' && <RecoveryKeyStep recoveryKey={step.key} onDone={() => setStep({ kind: 'unlock', tenant: step.tenant, user: step.user })} />}
        {step.kind === 'unlock' && (
          <Unlock tenant={step.tenant} initialUser={step.user} onBack={() => setStep({ kind: 'choose' })} demoHint={preset !== null && step.tenant.database === 'summit-roofing.db'} />
        )}
      </div>
    </main>
  );
}

function CreateTenant({ onCreated, onBack, canGoBack }: { onCreated(t: TenantEntry, key: string, user: string): void; onBack(): void; canGoBack: boolean }) {
  const { backend } = useApp();
  const companyRef = useFocusOnMount<HTMLInputElement>();
  const [name, setName] = useState('');
  const [user, setUser] = useState('');
  const [pass, setPass] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const mismatch = confirm !== '' && pass !== confirm;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (pass !== confirm) {
      setError({ code: 'local.mismatch', message: 'The two passphrases differ. Type the same one twice.' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const created = await backend.create_tenant({ name: name.trim(), user: user.trim(), passphrase: pass });
      onCreated(created.tenant, created.recovery_key, user.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} aria-labelledby="create-title" class="form">
      <h1 id="create-title">Create a company file</h1>
      <p class="muted">The file is encrypted with your passphrase. You can sign in to your company's server afterwards.</p>
      <label class="field">
        <span>Company name</span>
        <input ref={companyRef} name="company" value={name} onInput={(e) => setName(e.currentTarget.value)} required autoComplete="organization" />
      </label>
      <label class="field">
        <span>Your user name on this laptop</span>
        <input name="user" value={user} onInput={(e) => setUser(e.currentTarget.value)} required autoComplete="username" placeholder="e.g. sam" />
      </label>
      <label class="field">
        <span>Passphrase (at least 8 characters)</span>
        <input name="passphrase" type="password" value={pass} onInput={(e) => setPass(e.currentTarget.value)} required autoComplete="new-password" />
      </label>
      <label class="field">
        <span>Type the passphrase again</span>
        <input name="confirm" type="password" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} required autoComplete="new-password" aria-invalid={mismatch} />
      </label>
      {mismatch && <p class="field-hint warn">The two passphrases differ.</p>}
      <ErrorNote error={error} />
      <div class="form-actions">
        {canGoBack && (
          <button type="button" class="btn btn-ghost" onClick={onBack}>
            Back
          </button>
        )}
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create file'}
        </button>
      </div>
    </form>
  );
}

function RecoveryKeyStep({ recoveryKey, onDone }: { recoveryKey: string; onDone(): void }) {
  const [saved, setSaved] = useState(false);
  const [copied, setCopied] = useState(false);
  const grouped = groupRecoveryKey(recoveryKey);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(grouped);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return (
    <section aria-labelledby="recovery-title" class="form">
      <h1 id="recovery-title">Save your recovery key</h1>
      <p>
        If the passphrase is forgotten, this key is the <strong>only</strong> way to open the file. It is shown once and never again. Write it down or store it in
        your company's password manager.
      </p>
      <output class="recovery-key" data-testid="recovery-key" aria-label="Recovery key">
        {grouped}
      </output>
      <div class="form-actions form-actions-left">
        <button type="button" class="btn btn-secondary" onClick={copy}>
          {copied ? 'Copied' : 'Copy key'}
        </button>
      </div>
      <label class="check">
        <input type="checkbox" checked={saved} onChange={(e) => setSaved(e.currentTarget.checked)} name="saved" />
        <span>I have saved the recovery key somewhere safe</span>
      </label>
      <div class="form-actions">
        <button type="button" class="btn btn-primary" disabled={!saved} onClick={onDone}>
          Continue
        </button>
      </div>
    </section>
  );
}

function Unlock({ tenant, initialUser, onBack, demoHint }: { tenant: TenantEntry; initialUser: string; onBack(): void; demoHint: boolean }) {
  const { backend, setSession } = useApp();
  const [user, setUser] = useState(initialUser);
  const [pass, setPass] = useState('');
  const userRef = useFocusOnMount<HTMLInputElement>(!initialUser);
  const passRef = useFocusOnMount<HTMLInputElement>(!!initialUser);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await backend.unlock({ tenant_id: tenant.tenant_id, user: user.trim(), passphrase: pass });
      setSession(session);
    } catch (err) {
      setError(err);
      setPass('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} class="form" aria-labelledby="unlock-title">
      <h1 id="unlock-title">Unlock {tenant.name}</h1>
      <label class="field">
        <span>User name</span>
        <input ref={userRef} name="user" value={user} onInput={(e) => setUser(e.currentTarget.value)} required autoComplete="username" />
      </label>
      <label class="field">
        <span>Passphrase</span>
        <input ref={passRef} name="passphrase" type="password" value={pass} onInput={(e) => setPass(e.currentTarget.value)} required autoComplete="current-password" />
      </label>
      {demoHint && (
        <p class="field-hint">
          Demo data: users sam (field), marco (crew chief), dana (office), helen (viewer); passphrase <code>{DEMO_PASSPHRASE}</code>.
        </p>
      )}
      <ErrorNote error={error} />
      <div class="form-actions">
        <button type="button" class="btn btn-ghost" onClick={onBack}>
          Other file
        </button>
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Unlocking…' : 'Unlock'}
        </button>
      </div>
    </form>
  );
}
