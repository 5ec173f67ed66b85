// Vite build and vitest unit-test configuration for the StormOps Field UI.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Relative asset paths so the built UI loads from Tauri's custom protocol and from any static server.
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  clearScreen: false,
  server: { port: 5173, strictPort: true, host: '127.0.0.1' },
  preview: { port: 4173, strictPort: false, host: '127.0.0.1' },
  build: { target: 'es2022', outDir: 'dist', sourcemap: true },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
