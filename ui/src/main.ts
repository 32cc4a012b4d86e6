//! Entry point: mounts the single-page app into #app (both the main and the consent window).
import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";

async function start() {
  // `npm run dev` in a plain browser has no Tauri bridge: answer IPC from sample data instead.
  // The branch is dead code in production builds, so the preview is never shipped.
  if (import.meta.env.DEV && !("__TAURI_INTERNALS__" in window)) {
    const { installPreview } = await import("./dev/preview");
    installPreview();
  }
  const target = document.getElementById("app");
  if (!target) throw new Error("#app missing from index.html");
  mount(App, { target });
}

void start();
