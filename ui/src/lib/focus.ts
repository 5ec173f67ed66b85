// Focus on mount, applied in the same task as the render.
//
// The `autofocus` attribute is applied by the browser at its next rendering update, which can come
// after a quick typist (or a WebDriver test) has already moved to the next field: focus then jumps back
// and the rest of the typing lands in the first field. Focusing in a layout effect happens before
// anything else can run, so the first keystroke always goes where the form says it will.

import { useLayoutEffect, useRef } from 'preact/hooks';
import type { RefObject } from 'preact';

export function useFocusOnMount<T extends HTMLElement>(when = true): RefObject<T> {
  const ref = useRef<T>(null);
  useLayoutEffect(() => {
    if (when) ref.current?.focus();
    // Only on mount: a later change of `when` must not move the focus out from under the user.
  }, []);
  return ref;
}
