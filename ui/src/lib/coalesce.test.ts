// Unit tests of coalescing sync status events into one update per frame (and without frames).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { coalescePerFrame } from './coalesce';

describe('coalescePerFrame', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('applies only the latest value once per frame', () => {
    const frames: (() => void)[] = [];
    vi.stubGlobal('requestAnimationFrame', (cb: () => void) => frames.push(cb));
    vi.stubGlobal('cancelAnimationFrame', () => undefined);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const seen: number[] = [];
    const c = coalescePerFrame((v: number) => seen.push(v));
    for (let i = 1; i <= 50; i += 1) c.push(i);
    expect(seen).toEqual([]);
    expect(frames).toHaveLength(1);
    frames[0]();
    expect(seen).toEqual([50]);
    // The fallback timer of that frame applies nothing more.
    vi.advanceTimersByTime(1_000);
    expect(seen).toEqual([50]);
    c.push(51);
    expect(frames).toHaveLength(2);
    frames[1]();
    expect(seen).toEqual([50, 51]);
  });

  it('still applies when no frame comes (a hidden window), and cancel drops a pending value', () => {
    vi.stubGlobal('requestAnimationFrame', () => 1);
    vi.stubGlobal('cancelAnimationFrame', () => undefined);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const seen: string[] = [];
    const c = coalescePerFrame((v: string) => seen.push(v), 100);
    c.push('a');
    c.push('b');
    vi.advanceTimersByTime(99);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(seen).toEqual(['b']);
    c.push('c');
    c.cancel();
    vi.advanceTimersByTime(1_000);
    expect(seen).toEqual(['b']);
  });
});
