// Torchlight's demo site: a chat assistant whose model runs on this device. This file wires
// the panels together and owns what they share: the loaded engine, the conversation on
// screen, and the answer streaming into it.

import { Torchlight, TorchlightError } from "../pkg/index.js";
import * as chat from "./chat.js";
import * as conversations from "./conversations.js";
import { askCloudConsent } from "./dialogs.js";
import { ModelPanel } from "./model.js";
import * as panels from "./panels.js";
import * as pwa from "./pwa.js";
import * as settings from "./settings.js";

// The package, for the console (and the site's browser tests).
Object.assign(window, { Torchlight, TorchlightError });

const $ = (id) => document.getElementById(id);
const CURRENT_CONVERSATION = "torchlight-site:conversation";

const state = {
  /** The engine answers come from: a local model, or a cloud fallback where none can run. */
  engine: null,
  engineName: "",
  /** The loaded model's cache key (its absolute URL), when it came from a URL. */
  engineKey: null,
  /** A cloud-only engine for requests the person sends to the cloud, and the settings it was made with. */
  cloudEngine: null,
  cloudSettings: "",
  conversation: conversations.create(),
  /** The AbortController of the answer streaming now. */
  generating: null,
};

const caps = Torchlight.probe().catch(() => ({ webgpu: false, adapter: null, shaderF16: false, subgroups: false, limits: null, storage: null }));

const withConsent = (cloud) => cloud && { ...cloud, consent: askCloudConsent };

function showEngineState() {
  const pill = $("engine-state");
  const { engine } = state;
  if (!engine) pill.textContent = "No model loaded";
  else if (engine.localError) pill.textContent = `${state.engineName}: answers from the cloud (${engine.localError.code})`;
  else pill.textContent = `${state.engineName}, on this device`;
  pill.classList.toggle("ready", !!engine && !engine.localError);
}

async function releaseEngine() {
  state.generating?.abort();
  const old = state.engine;
  state.engine = null;
  state.engineKey = null;
  showEngineState();
  await old?.unload().catch(() => {});
}

function refreshStorage() {
  return panels.showStorage({ inUse: state.engineKey, onLoad: (url, name) => models.load(url, name) });
}

const models = new ModelPanel({
  caps,
  cloud: () => withConsent(settings.cloud()),
  contextLength: settings.contextLength,
  release: releaseEngine,
  loaded: async (engine, { name, key }) => {
    state.engine = engine;
    state.engineName = name;
    state.engineKey = key ?? null;
    showEngineState();
  },
  changed: refreshStorage,
});

/** Where the next request goes, or null (and a word to the person) when nothing can answer it. */
async function engineForRequest() {
  const cloud = settings.cloud();
  if (settings.askCloud() || (!state.engine && cloud)) {
    if (!cloud) throw new Error("Set the cloud endpoint's URL and model in Settings first.");
    if (!panels.runsHere(await caps) && !state.engine) {
      // No WebGPU: an engine that says so on every answer ("cloud (no_webgpu)").
      state.engine = await Torchlight.load($("model-select").value || "model.gguf", { cloud: withConsent(cloud), route: "local-first" });
      state.engineName = cloud.model;
      showEngineState();
      return state.engine;
    }
    const key = JSON.stringify(cloud);
    if (state.cloudSettings !== key) {
      state.cloudEngine = await Torchlight.load("cloud", { cloud: withConsent(cloud), route: "cloud-only" });
      state.cloudSettings = key;
    }
    return state.cloudEngine;
  }
  if (state.engine) return state.engine;
  throw new Error("Load a model first (or set a cloud endpoint in Settings).");
}

function setGenerating(controller) {
  state.generating = controller;
  $("stop").disabled = !controller;
  $("send").disabled = !!controller;
}

async function saveConversation(conversation) {
  conversation.updated = Date.now();
  await conversations.save(conversation).catch((e) => console.error("the conversation could not be saved:", e));
  localStorage.setItem(CURRENT_CONVERSATION, conversation.id);
  await showConversations();
}

/**
 * What the model is sent: the system prompt, then the conversation, less each question that
 * got no answer (it failed) and that empty answer, so that turns still alternate.
 */
function requestMessages(conversation) {
  const history = [];
  for (const { role, content } of conversation.messages) {
    if (content) history.push({ role, content });
    else if (role === "assistant" && history.at(-1)?.role === "user") history.pop();
  }
  const system = settings.systemPrompt();
  return system ? [{ role: "system", content: system }, ...history] : history;
}

async function send() {
  const text = $("prompt").value;
  if (!text.trim() || state.generating) return;
  $("composer-status").textContent = "";
  let engine;
  try {
    engine = await engineForRequest();
  } catch (e) {
    $("composer-status").textContent = e.message;
    return;
  }
  $("prompt").value = "";
  const conversation = state.conversation;
  if (conversation.messages.length === 0) conversation.title = conversations.titleFor(text);
  const question = { role: "user", content: text, at: Date.now() };
  conversation.messages.push(question);
  chat.append(question);
  const messages = requestMessages(conversation);
  const answer = { role: "assistant", content: "", at: Date.now() };
  conversation.messages.push(answer);
  const node = chat.append(answer, { pending: true });
  const controller = new AbortController();
  setGenerating(controller);
  try {
    await saveConversation(conversation);
    await chat.stream({ engine, messages, params: settings.sampling(), answer, node, signal: controller.signal });
  } finally {
    setGenerating(null);
    await saveConversation(conversation);
    // An "always" given for this answer is listed, with a way to take it back.
    await panels.showConsents();
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function showConversations() {
  const all = await conversations.list().catch(() => []);
  const list = $("conversations");
  list.replaceChildren(
    ...all.map((conversation) => {
      const item = element("li", "conversation");
      const open = element("button", "open-conversation quiet");
      open.type = "button";
      open.append(element("span", "title", conversation.title), element("span", "hint", new Date(conversation.updated).toLocaleString()));
      if (conversation.id === state.conversation.id) open.setAttribute("aria-current", "true");
      open.addEventListener("click", () => openConversation(conversation.id));
      const remove = element("button", "delete-conversation quiet", "Delete");
      remove.type = "button";
      remove.setAttribute("aria-label", `Delete conversation: ${conversation.title}`);
      remove.addEventListener("click", () => deleteConversation(conversation.id));
      item.append(open, remove);
      return item;
    }),
  );
  if (all.length === 0) list.append(element("li", "hint", "No saved conversations yet."));
}

async function openConversation(id) {
  state.generating?.abort();
  const conversation = await conversations.get(id);
  if (!conversation) return;
  state.conversation = conversation;
  localStorage.setItem(CURRENT_CONVERSATION, id);
  chat.show(conversation);
  await showConversations();
}

function newChat() {
  state.generating?.abort();
  state.conversation = conversations.create();
  localStorage.removeItem(CURRENT_CONVERSATION);
  chat.show(state.conversation);
  showConversations();
  $("prompt").focus();
}

async function deleteConversation(id) {
  if (id === state.conversation.id) newChat();
  await conversations.remove(id);
  await showConversations();
}

async function exportConversations() {
  const all = await conversations.list();
  const json = JSON.stringify({ exported: new Date().toISOString(), app: "Torchlight", conversations: all }, null, 2);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  link.download = `torchlight-conversations-${new Date().toISOString().slice(0, 10)}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function onSettingChange(id) {
  // A cloud fallback made for a browser without WebGPU follows the endpoint's settings.
  if (id.startsWith("cloud-") && state.engine?.localError && !state.generating) {
    state.engine = null;
    showEngineState();
  }
}

function wire() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("stop").addEventListener("click", () => state.generating?.abort());
  $("new-chat").addEventListener("click", newChat);
  $("export").addEventListener("click", exportConversations);
  $("persist").addEventListener("click", async () => {
    await panels.requestPersistence();
    await refreshStorage();
  });
  $("use-cloud").addEventListener("click", () => {
    $("settings").scrollIntoView({ behavior: "smooth", block: "start" });
    $("cloud-url").focus();
  });
}

async function start() {
  settings.init(onSettingChange);
  wire();
  const saved = localStorage.getItem(CURRENT_CONVERSATION);
  const conversation = saved && (await conversations.get(saved).catch(() => null));
  if (conversation) state.conversation = conversation;
  chat.show(state.conversation);
  await Promise.all([
    models.init(),
    showConversations(),
    refreshStorage(),
    panels.showConsents(),
    caps.then(panels.showDevice),
    pwa.register({ busy: () => !!state.generating }),
  ]);
  document.documentElement.dataset.ready = "true";
}

start();
