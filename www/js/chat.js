// The conversation on screen: messages as they are stored, and an answer as it streams in,
// with where it came from (a badge), how fast it came (tokens/s, time to first token), a
// thinking model's reasoning folded away above it, and `data-done="true"` once it has ended,
// whichever way it ended.

import { TorchlightError } from "../pkg/index.js";
import * as format from "./format.js";
import { render } from "./markdown.js";

const messagesBox = () => document.getElementById("messages");

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "on this device", or "cloud (reason)". */
export function badgeText(route) {
  if (!route) return "";
  return route.used === "local" ? "on this device" : `cloud (${route.reason ?? "requested"})`;
}

/** "12.3 tokens/s · 0.84 s to first token · 40 tokens", from what the answer measured. */
function statsText(stats) {
  if (!stats || !stats.tokens) return "";
  const parts = [];
  if (Number.isFinite(stats.tokensPerSecond)) parts.push(`${stats.tokensPerSecond.toFixed(1)} tokens/s`);
  if (Number.isFinite(stats.firstTokenMs)) parts.push(`${format.milliseconds(stats.firstTokenMs)} to first token`);
  parts.push(`${stats.tokens} token${stats.tokens === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

/**
 * Where `article`'s reasoning goes: a folded box above the answer, made (closed) the first time
 * it is asked for.
 */
function reasoningText(article) {
  let box = article.querySelector(".reasoning");
  if (!box) {
    box = element("details", "reasoning");
    box.append(element("summary", "", "Reasoning"), element("div", "reasoning-text"));
    article.querySelector(".content").before(box);
  }
  return box.querySelector(".reasoning-text");
}

/** The element for one stored message. */
function messageElement(message) {
  const article = element("article", `message ${message.role}`);
  article.setAttribute("aria-label", message.role === "user" ? "You" : "Assistant");
  const content = element("div", "content");
  article.append(content);
  if (message.role === "user") {
    content.textContent = message.content;
    return article;
  }
  content.innerHTML = render(message.content);
  if (message.reasoning) reasoningText(article).textContent = message.reasoning;
  const meta = element("footer", "meta");
  meta.append(element("span", "badge", badgeText(message.route)), element("span", "stats", statsText(message.stats)));
  article.append(meta);
  if (message.stopped) article.append(element("p", "note", "Stopped."));
  if (message.error) {
    const error = element("p", "error");
    error.append("Error ", element("code", "", message.error.code), `: ${message.error.message}`);
    article.append(error);
  }
  article.querySelector(".badge").hidden = !message.route;
  article.dataset.done = "true";
  return article;
}

/** Shows `conversation`'s messages, replacing what was there. */
export function show(conversation) {
  const box = messagesBox();
  box.replaceChildren(...conversation.messages.map(messageElement));
  if (conversation.messages.length === 0) {
    box.append(element("p", "empty", "Load a model, then ask anything. Each answer says where it was written: on this device, or (only with your yes) in the cloud."));
  }
  box.scrollTop = box.scrollHeight;
}

/** Adds `message` at the end; an answer about to stream (`pending`) is not done yet. */
export function append(message, { pending = false } = {}) {
  const box = messagesBox();
  box.querySelector(".empty")?.remove();
  const node = messageElement(message);
  if (pending) {
    node.dataset.done = "false";
    node.setAttribute("aria-busy", "true");
  }
  box.append(node);
  box.scrollTop = box.scrollHeight;
  return node;
}

/**
 * Streams an answer to `messages` from `engine` into `answer` (a stored message, filled in
 * place: `content`, and `reasoning` when the model thinks) and its element `node`. Resolves
 * once it ended: finished, stopped by `signal`, or failed (the error is kept in the message,
 * with its code).
 */
export async function stream({ engine, messages, params, answer, node, signal }) {
  const box = messagesBox();
  const content = node.querySelector(".content");
  const badge = node.querySelector(".badge");
  const stats = node.querySelector(".stats");
  node.dataset.done = "false";
  node.setAttribute("aria-busy", "true");
  content.replaceChildren(element("span", "typing", "Thinking…"));

  let scheduled = false;
  // The reasoning streams into its folded box (plain text), made once the model thinks; the
  // box stays open or closed as the person leaves it.
  let reasoning = null;
  const paint = () => {
    scheduled = false;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    // "Thinking…" stays until the answer itself begins.
    if (answer.content) content.innerHTML = render(answer.content);
    if (reasoning) reasoning.textContent = answer.reasoning;
    if (atBottom) box.scrollTop = box.scrollHeight;
  };

  const started = performance.now();
  let firstAt = null;
  let chunks = 0;
  let usage = null;
  let timings = null;
  try {
    const chunkStream = await engine.chat.completions.create({ ...params, messages, stream: true, signal });
    for await (const chunk of chunkStream) {
      if (chunk.route && !answer.route) {
        answer.route = chunk.route;
        badge.textContent = badgeText(chunk.route);
        badge.hidden = false;
      }
      const delta = chunk.choices?.[0]?.delta;
      if (delta?.reasoning_content) {
        reasoning ??= reasoningText(node);
        answer.reasoning = (answer.reasoning ?? "") + delta.reasoning_content;
      }
      if (delta?.content) answer.content += delta.content;
      if (delta?.content || delta?.reasoning_content) {
        firstAt ??= performance.now();
        chunks += 1;
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(paint);
        }
      }
      if (chunk.usage) usage = chunk.usage;
      if (chunk.timings) timings = chunk.timings;
    }
  } catch (error) {
    if (error instanceof TorchlightError && error.code === "aborted") {
      answer.stopped = true;
      node.append(element("p", "note", "Stopped."));
    } else {
      const code = error instanceof TorchlightError ? error.code : "internal";
      answer.error = { code, message: error?.message ?? String(error) };
      const line = element("p", "error");
      line.append("Error ", element("code", "", code), `: ${answer.error.message}`);
      node.append(line);
    }
  } finally {
    const ended = performance.now();
    const tokens = usage?.completion_tokens ?? chunks;
    let firstTokenMs = timings ? timings.prefill_ms : firstAt !== null ? firstAt - started : NaN;
    let tokensPerSecond = NaN;
    if (timings && tokens > 1 && timings.decode_ms > 0) tokensPerSecond = ((tokens - 1) * 1000) / timings.decode_ms;
    else if (firstAt !== null && tokens > 1 && ended > firstAt) tokensPerSecond = ((tokens - 1) * 1000) / (ended - firstAt);
    else if (tokens > 0 && Number.isFinite(firstTokenMs) && firstTokenMs > 0) tokensPerSecond = (tokens * 1000) / firstTokenMs;
    if (!Number.isFinite(firstTokenMs)) firstTokenMs = NaN;
    answer.stats = tokens ? { tokens, tokensPerSecond, firstTokenMs } : null;
    content.innerHTML = render(answer.content);
    if (reasoning) reasoning.textContent = answer.reasoning;
    stats.textContent = statsText(answer.stats);
    node.removeAttribute("aria-busy");
    node.dataset.done = "true";
  }
}
