// Projects latitude/longitude onto a canvas without map tiles: an equirectangular fit of the points' box.

export interface LatLon {
  latitude: number;
  longitude: number;
}

export interface Bounds {
  minLat: number;
  maxLat: number;
  minLon: number;
  maxLon: number;
}

export interface Projection {
  /** Canvas x,y (y grows downwards) of a coordinate. */
  project(lat: number, lon: number): [number, number];
  /** The coordinate under a canvas point. */
  unproject(x: number, y: number): [number, number];
  /** Canvas pixels per degree of longitude (same scale on both axes after the cos(lat) correction). */
  scale: number;
}

/** The bounding box of finite points; a tiny box around the middle when there is only one. */
export function boundsOf(points: readonly LatLon[]): Bounds | null {
  let minLat = Infinity;
  let maxLat = -Infinity;
  let minLon = Infinity;
  let maxLon = -Infinity;
  for (const p of points) {
    if (!Number.isFinite(p.latitude) || !Number.isFinite(p.longitude)) continue;
    if (p.latitude < minLat) minLat = p.latitude;
    if (p.latitude > maxLat) maxLat = p.latitude;
    if (p.longitude < minLon) minLon = p.longitude;
    if (p.longitude > maxLon) maxLon = p.longitude;
  }
  if (minLat === Infinity) return null;
  const eps = 0.001;
  if (maxLat - minLat < eps) {
    minLat -= eps;
    maxLat += eps;
  }
  if (maxLon - minLon < eps) {
    minLon -= eps;
    maxLon += eps;
  }
  return { minLat, maxLat, minLon, maxLon };
}

/**
 * Fits `bounds` into a width×height canvas with `padding` pixels on every side, keeping the aspect
 * (longitude degrees shrink by cos of the middle latitude) and centring the unused space.
 */
export function fitProjection(bounds: Bounds, width: number, height: number, padding = 16): Projection {
  const midLat = (bounds.minLat + bounds.maxLat) / 2;
  const kx = Math.cos((midLat * Math.PI) / 180);
  const spanX = (bounds.maxLon - bounds.minLon) * kx;
  const spanY = bounds.maxLat - bounds.minLat;
  const innerW = Math.max(1, width - 2 * padding);
  const innerH = Math.max(1, height - 2 * padding);
  const s = Math.min(innerW / spanX, innerH / spanY);
  const offsetX = padding + (innerW - spanX * s) / 2;
  const offsetY = padding + (innerH - spanY * s) / 2;
  return {
    scale: s * kx,
    project(lat, lon) {
      return [offsetX + (lon - bounds.minLon) * kx * s, offsetY + (bounds.maxLat - lat) * s];
    },
    unproject(x, y) {
      return [bounds.maxLat - (y - offsetY) / s, bounds.minLon + (x - offsetX) / (kx * s)];
    },
  };
}
