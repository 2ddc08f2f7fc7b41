// The settings form, kept in localStorage as it changes. The API key is stored only when the
// person ticks "remember the key"; otherwise it lives in the field, for this visit.

const STORAGE_KEY = "torchlight-site:settings";

/** Field id → how its value is read and written. */
const FIELDS = {
  "temperature": "number",
  "top-p": "number",
  "max-tokens": "number",
  "context-length": "number",
  "system-prompt": "text",
  "cloud-url": "text",
  "cloud-model": "text",
  "cloud-key": "secret",
  "remember-key": "checkbox",
  "ask-cloud": "checkbox",
};

const field = (id) => document.getElementById(id);

function stored() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY)) ?? {};
  } catch {
    return {};
  }
}

function persist() {
  const values = {};
  for (const [id, kind] of Object.entries(FIELDS)) {
    if (kind === "secret" && !field("remember-key").checked) continue;
    values[id] = kind === "checkbox" ? field(id).checked : field(id).value;
  }
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(values));
  } catch {
    // Storage refused (private mode, full): the settings still hold for this visit.
  }
}

/** Fills the form from storage and keeps storage up to date; `onChange(id)` hears each change. */
export function init(onChange) {
  const values = stored();
  for (const [id, kind] of Object.entries(FIELDS)) {
    if (!(id in values)) continue;
    if (kind === "checkbox") field(id).checked = !!values[id];
    else field(id).value = values[id];
  }
  for (const id of Object.keys(FIELDS)) {
    const element = field(id);
    const changed = () => {
      persist();
      onChange?.(id);
    };
    element.addEventListener("change", changed);
    element.addEventListener("input", persist);
  }
}

function number(id, fallback, min, max) {
  const value = Number.parseFloat(field(id).value);
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback;
}

/** The sampling options of a request, from the form. */
export function sampling() {
  return {
    temperature: number("temperature", 0.7, 0, 2),
    top_p: number("top-p", 0.95, 0, 1),
    max_tokens: Math.round(number("max-tokens", 512, 1, 1 << 20)),
  };
}

export const systemPrompt = () => field("system-prompt").value.trim();
export const contextLength = () => Math.round(number("context-length", 2048, 16, 1 << 20));
export const askCloud = () => field("ask-cloud").checked;

/** The cloud endpoint as the form has it, or null when its URL or model is missing. */
export function cloud() {
  const baseURL = field("cloud-url").value.trim();
  const model = field("cloud-model").value.trim();
  if (!baseURL || !model) return null;
  return { baseURL, model, apiKey: field("cloud-key").value || undefined, rememberKey: field("remember-key").checked };
}
