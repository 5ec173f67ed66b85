// A virtualised list: only the rows in view (plus overscan) are in the DOM; rows load lazily by page.

import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { scrollToReveal, windowRange } from '../lib/virtual';

export interface VirtualListProps {
  count: number;
  rowHeight: number;
  overscan?: number;
  /** Renders row `index`; called only for rows in the window. */
  renderRow(index: number, focused: boolean): ComponentChildren;
  /** Told which rows are in the window (for page loading). */
  onRange?(start: number, end: number): void;
  /** Enter on the focused row. */
  onActivate?(index: number): void;
  label: string;
  /** Changing this scrolls back to the top (a new filter). */
  resetKey?: string;
  id?: string;
}

export function VirtualList({ count, rowHeight, overscan = 6, renderRow, onRange, onActivate, label, resetKey, id }: VirtualListProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [focus, setFocus] = useState(0);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setHeight(el.clientHeight || 600);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    if (ref.current) ref.current.scrollTop = 0;
    setScrollTop(0);
    setFocus(0);
  }, [resetKey]);

  const range = windowRange({ scrollTop, viewportHeight: height, rowHeight, count, overscan });
  useEffect(() => {
    onRange?.(range.start, range.end);
  }, [range.start, range.end, count]);

  const moveFocus = (next: number) => {
    const el = ref.current;
    if (!el || count === 0) return;
    const i = Math.max(0, Math.min(count - 1, next));
    setFocus(i);
    el.scrollTop = scrollToReveal(i, el.scrollTop, el.clientHeight, rowHeight);
    setScrollTop(el.scrollTop);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const page = Math.max(1, Math.floor(height / rowHeight) - 1);
    const keys: Record<string, number> = { ArrowDown: focus + 1, ArrowUp: focus - 1, PageDown: focus + page, PageUp: focus - page, Home: 0, End: count - 1 };
    if (e.key in keys) {
      e.preventDefault();
      moveFocus(keys[e.key]);
    } else if ((e.key === 'Enter' || e.key === ' ') && onActivate && count > 0) {
      e.preventDefault();
      onActivate(focus);
    }
  };

  const rows = [];
  for (let i = range.start; i < range.end; i += 1) {
    rows.push(
      <div
        key={i}
        class={`vrow${i === focus ? ' vrow-focus' : ''}`}
        role="option"
        aria-selected={i === focus}
        aria-posinset={i + 1}
        aria-setsize={count}
        id={id ? `${id}-row-${i}` : undefined}
        data-index={i}
        style={{ height: `${rowHeight}px`, transform: `translateY(${range.offsetTop + (i - range.start) * rowHeight}px)` }}
        onMouseDown={() => setFocus(i)}
        onClick={() => onActivate?.(i)}
      >
        {renderRow(i, i === focus)}
      </div>,
    );
  }
  return (
    <div
      ref={ref}
      class="vlist"
      id={id}
      tabIndex={0}
      role="listbox"
      aria-label={label}
      aria-activedescendant={count > 0 && id ? `${id}-row-${focus}` : undefined}
      data-count={count}
      onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
      onKeyDown={onKeyDown}
    >
      <div class="vlist-spacer" style={{ height: `${range.totalHeight}px` }}>
        {rows}
      </div>
    </div>
  );
}
