// A modal dialog on the native <dialog>: focus moves in, Escape closes, focus returns on close.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export function Dialog({ open, title, onClose, children, id }: { open: boolean; title: string; onClose(): void; children: ComponentChildren; id?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  const returnTo = useRef<Element | null>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      returnTo.current = document.activeElement;
      d.showModal();
      const first = d.querySelector<HTMLElement>('[autofocus], textarea, input, select, button:not(.dialog-close)');
      first?.focus();
    } else if (!open && d.open) {
      d.close();
      (returnTo.current as HTMLElement | null)?.focus?.();
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      class="dialog"
      id={id}
      aria-labelledby={id ? `${id}-title` : undefined}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      onClick={(e) => {
        if (e.target === ref.current) onClose();
      }}
    >
      <div class="dialog-body">
        <header class="dialog-header">
          <h2 id={id ? `${id}-title` : undefined}>{title}</h2>
          <button type="button" class="btn btn-ghost dialog-close" aria-label="Close" onClick={onClose}>
            ✕
          </button>
        </header>
        {open && children}
      </div>
    </dialog>
  );
}
