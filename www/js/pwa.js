// The service worker: the app shell offline, and updates that wait for the person. A new
// version installs in the background and waits; the page shows "update ready" and switches
// only when the person asks (a reload), so no conversation is cut off mid-answer.

const $ = (id) => document.getElementById(id);

/** Asks the active worker which version of the site it serves. */
function askVersion(worker) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = ({ data }) => resolve(data?.version ?? null);
    worker.postMessage({ type: "version" }, [channel.port2]);
    setTimeout(() => resolve(null), 2000);
  });
}

/** `busy()` says whether an answer is streaming: the reload then waits for it to end. */
export async function register({ busy }) {
  if (!("serviceWorker" in navigator)) {
    $("offline-state").textContent = "This browser cannot keep the site for offline use.";
    return;
  }
  let registration;
  try {
    registration = await navigator.serviceWorker.register("sw.js");
  } catch (e) {
    $("offline-state").textContent = `Offline use is unavailable: ${e.message}`;
    return;
  }

  const showReady = async () => {
    const worker = (await navigator.serviceWorker.ready).active;
    const version = await askVersion(worker);
    $("offline-state").textContent = "Ready to work offline";
    if (version) $("app-version").textContent = `version ${version}`;
    document.documentElement.dataset.offlineReady = "true";
  };
  showReady();

  let reloading = false;
  /** Shows the banner; its button runs `update` once no answer is streaming. */
  const offer = (update) => {
    $("update-ready").hidden = false;
    $("update-reload").disabled = false;
    $("update-reload").onclick = async () => {
      $("update-reload").disabled = true;
      while (busy()) await new Promise((resolve) => setTimeout(resolve, 200));
      update();
    };
  };
  // A worker that finished installing while another one controls this page is an update.
  const announce = (worker) => {
    if (!worker || !navigator.serviceWorker.controller) return;
    offer(() => {
      reloading = true;
      worker.postMessage({ type: "skip-waiting" });
    });
  };
  let controlled = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (reloading) return location.reload();
    // Another tab switched to the new version: this page still runs the old one.
    if (controlled) offer(() => location.reload());
    controlled = true;
    showReady();
  });
  $("update-later").addEventListener("click", () => {
    $("update-ready").hidden = true;
  });

  if (registration.waiting) announce(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    worker?.addEventListener("statechange", () => {
      if (worker.state === "installed") announce(worker);
    });
  });

  // Long-lived tabs look for a new version now and then.
  setInterval(() => registration.update().catch(() => {}), 60 * 60 * 1000);
}
