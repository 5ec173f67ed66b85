// A tile-free map: property coordinates projected onto a canvas, coloured by decision and uplift.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { RankedProperty } from '../lib/backend/types';
import { formatUplift } from '../lib/format';
import { boundsOf, fitProjection } from '../lib/projection';

/** Colour of a point: treat = warm by uplift, hold = grey-blue, no decision = outline colour. */
export function pointColour(row: Pick<RankedProperty, 'uplift' | 'latest_decision'>, contrast: boolean): string {
  if (row.latest_decision === 'hold') return contrast ? '#0033aa' : '#6b7f99';
  if (row.uplift === null) return contrast ? '#555555' : '#a3acb9';
  const u = row.uplift;
  if (row.latest_decision === 'treat') return u >= 0.25 ? (contrast ? '#b00000' : '#d9480f') : contrast ? '#a04000' : '#f08c00';
  return u >= 0.25 ? '#c2255c' : '#e599b5';
}

export function MapCanvas({ rows, selectedId, onPick, caption }: { rows: RankedProperty[]; selectedId?: string | null; onPick?(id: string): void; caption: string }) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [size, setSize] = useState({ w: 400, h: 400 });
  const [hover, setHover] = useState<RankedProperty | null>(null);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setSize({ w: Math.max(200, el.clientWidth), h: Math.max(200, el.clientHeight) }));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const bounds = boundsOf(rows.map((r) => r.property));
  const projection = bounds ? fitProjection(bounds, size.w, size.h, 18) : null;

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = size.w * dpr;
    c.height = size.h * dpr;
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const contrast = document.documentElement.dataset.theme === 'contrast';
    ctx.fillStyle = contrast ? '#ffffff' : '#f3f5f8';
    ctx.fillRect(0, 0, size.w, size.h);
    // Light grid so distance reads without tiles.
    ctx.strokeStyle = contrast ? '#999999' : '#e1e6ed';
    ctx.lineWidth = 1;
    for (let x = 0; x < size.w; x += 48) {
      ctx.beginPath();
      ctx.moveTo(x + 0.5, 0);
      ctx.lineTo(x + 0.5, size.h);
      ctx.stroke();
    }
    for (let y = 0; y < size.h; y += 48) {
      ctx.beginPath();
      ctx.moveTo(0, y + 0.5);
      ctx.lineTo(size.w, y + 0.5);
      ctx.stroke();
    }
    if (!projection) return;
    const radius = rows.length > 2000 ? 2 : rows.length > 400 ? 3 : 4.5;
    // Draw lowest uplift first so the best prospects sit on top.
    for (let i = rows.length - 1; i >= 0; i -= 1) {
      const r = rows[i];
      const [x, y] = projection.project(r.property.latitude, r.property.longitude);
      ctx.fillStyle = pointColour(r, contrast);
      ctx.beginPath();
      ctx.arc(x, y, radius, 0, Math.PI * 2);
      ctx.fill();
    }
    const sel = rows.find((r) => r.property.id === selectedId) ?? hover;
    if (sel) {
      const [x, y] = projection.project(sel.property.latitude, sel.property.longitude);
      ctx.strokeStyle = contrast ? '#000000' : '#1c2b3a';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(x, y, radius + 6, 0, Math.PI * 2);
      ctx.stroke();
    }
  }, [rows, size, selectedId, hover, projection === null]);

  const nearest = (e: MouseEvent): RankedProperty | null => {
    if (!projection || !canvas.current) return null;
    const rect = canvas.current.getBoundingClientRect();
    const mx = e.clientX - rect.left;
    const my = e.clientY - rect.top;
    let best: RankedProperty | null = null;
    let bestD = 14 * 14;
    for (const r of rows) {
      const [x, y] = projection.project(r.property.latitude, r.property.longitude);
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bestD) {
        bestD = d;
        best = r;
      }
    }
    return best;
  };

  return (
    <figure class="map" aria-label={caption}>
      <div class="map-canvas" ref={wrap}>
        <canvas
          ref={canvas}
          style={{ width: `${size.w}px`, height: `${size.h}px` }}
          role="img"
          aria-label={`${caption}: ${rows.length} properties plotted`}
          onMouseMove={(e) => setHover(nearest(e))}
          onMouseLeave={() => setHover(null)}
          onClick={(e) => {
            const r = nearest(e);
            if (r && onPick) onPick(r.property.id);
          }}
        />
        {hover && (
          <div class="map-tip">
            <strong>{hover.property.address}</strong>
            <span>{formatUplift(hover.uplift)} uplift</span>
          </div>
        )}
      </div>
      <figcaption class="map-legend">
        <span><i class="dot dot-treat-high" />Treat, high uplift</span>
        <span><i class="dot dot-treat" />Treat</span>
        <span><i class="dot dot-hold" />Hold</span>
        <span><i class="dot dot-none" />Unscored</span>
        <span class="muted">{caption}</span>
      </figcaption>
    </figure>
  );
}
