// Unit tests of the tile-free map projection: fitting, aspect, centring and round trips.
import { describe, expect, test } from 'vitest';
import { boundsOf, fitProjection } from './projection';

describe('map projection', () => {
  test('bounds skip non-finite points and widen a single point', () => {
    expect(boundsOf([])).toBeNull();
    const b = boundsOf([{ latitude: 35, longitude: -97 }, { latitude: Number.NaN, longitude: 0 }]);
    expect(b).not.toBeNull();
    expect(b!.maxLat - b!.minLat).toBeCloseTo(0.002);
  });
  test('north is up, west is left, all points inside the padding', () => {
    const pts = [
      { latitude: 35.1, longitude: -97.5 },
      { latitude: 35.3, longitude: -97.3 },
      { latitude: 35.2, longitude: -97.4 },
    ];
    const p = fitProjection(boundsOf(pts)!, 400, 300, 20);
    const [xw, yn] = p.project(35.3, -97.5);
    const [xe, ys] = p.project(35.1, -97.3);
    expect(xw).toBeLessThan(xe);
    expect(yn).toBeLessThan(ys);
    for (const q of pts) {
      const [x, y] = p.project(q.latitude, q.longitude);
      expect(x).toBeGreaterThanOrEqual(20 - 1e-9);
      expect(x).toBeLessThanOrEqual(380 + 1e-9);
      expect(y).toBeGreaterThanOrEqual(20 - 1e-9);
      expect(y).toBeLessThanOrEqual(280 + 1e-9);
    }
  });
  test('keeps the aspect: a degree of longitude is cos(lat) of a degree of latitude', () => {
    const p = fitProjection({ minLat: 59.9, maxLat: 60.1, minLon: 10, maxLon: 10.4 }, 1000, 1000, 0);
    const [x0, y0] = p.project(60, 10);
    const [x1] = p.project(60, 10.1);
    const [, y1] = p.project(59.9, 10);
    expect((x1 - x0) / (y1 - y0)).toBeCloseTo(Math.cos((60 * Math.PI) / 180), 6);
  });
  test('centres the unused space and round-trips', () => {
    const b = { minLat: 35, maxLat: 35.1, minLon: -97.1, maxLon: -97 };
    const p = fitProjection(b, 800, 200, 10);
    const [cx, cy] = p.project(35.05, -97.05);
    expect(cx).toBeCloseTo(400, 6);
    expect(cy).toBeCloseTo(100, 6);
    const [lat, lon] = p.unproject(...p.project(35.07, -97.02));
    expect(lat).toBeCloseTo(35.07, 9);
    expect(lon).toBeCloseTo(-97.02, 9);
  });
});
