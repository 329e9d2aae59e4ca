import { defineConfig } from "vite";

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/socket.io": { target: "ws://127.0.0.1:8080", ws: true } } },
  test: { environment: "node", globals: true },
});
