// The two questions the site asks before anything leaves or lands on the device: may it download
// this many bytes, and may this conversation go to a cloud endpoint.

import * as format from "./format.js";

/** Shows `dialog` modally; resolves to the value of the button that closed it ("" for Escape). */
function ask(dialog, focus) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
    focus?.focus();
  });
}

function paragraph(text, className) {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  return p;
}

/** Whether the person agrees to download the model `name` that `estimate` describes. */
export async function confirmDownload(name, estimate) {
  const dialog = document.getElementById("download-consent");
  const body = document.getElementById("download-consent-body");
  body.replaceChildren(
    paragraph(`${name} is ${format.bytes(estimate.bytes)}. It will be downloaded once and kept on this device, so later it loads with no network.`),
    paragraph(`Running it takes about ${format.bytes(estimate.gpuBytes)} of ${estimate.backend === "cpu" ? "memory" : "GPU memory"} (${estimate.architecture}, ${estimate.quantization}, ${estimate.contextLength} tokens of context).`),
  );
  if (estimate.fits) {
    body.append(paragraph("It fits this device.", "ok"));
  } else {
    body.append(paragraph("It may not run here:", "warn"));
    const reasons = document.createElement("ul");
    for (const reason of estimate.reasons) reasons.append(Object.assign(document.createElement("li"), { textContent: reason }));
    body.append(reasons);
  }
  document.getElementById("download-confirm").textContent = estimate.fits ? `Download ${format.bytes(estimate.bytes)}` : "Download anyway";
  return (await ask(dialog, document.getElementById("download-confirm"))) === "confirm";
}

const REASONS = {
  requested: "you asked for the cloud",
  no_webgpu: "this browser has no WebGPU",
  load_failed: "the model could not load on this device",
  does_not_fit: "the model does not fit this device",
  device_lost: "the GPU stopped working",
  context_overflow: "the conversation is longer than the model's context here",
};

/** The package's `consent` callback: "once", "always" or "deny", as the person answers. */
export async function askCloudConsent({ reason, endpoint, model, messages, estimatedTokens }) {
  const dialog = document.getElementById("cloud-consent");
  const last = messages.findLast((m) => m.role === "user")?.content ?? "";
  const quote = document.createElement("blockquote");
  quote.textContent = last.length > 280 ? `${last.slice(0, 277)}…` : last;
  document.getElementById("cloud-consent-body").replaceChildren(
    paragraph(`Why: ${REASONS[reason] ?? reason}.`),
    paragraph(`To: ${endpoint} (model ${model}).`),
    paragraph(`What: the whole conversation, ${messages.length} message${messages.length === 1 ? "" : "s"} (about ${estimatedTokens} tokens), ending with:`),
    quote,
    paragraph("Nothing has been sent yet."),
  );
  const answer = await ask(dialog, document.getElementById("consent-deny"));
  return ["once", "always"].includes(answer) ? answer : "deny";
}
