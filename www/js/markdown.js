// Answers rendered as Markdown. Model output is untrusted: marked turns it into HTML and
// DOMPurify keeps only inert markup. Anything that would load from elsewhere by itself (images,
// media, frames, styles, forms) is dropped, so an answer cannot send the conversation anywhere
// by being displayed; links stay, and open in a new tab without a referrer.

import { Marked } from "../vendor/marked.js";
import DOMPurify from "../vendor/purify.js";

const marked = new Marked({ gfm: true, breaks: false, async: false });

const OPTIONS = {
  FORBID_TAGS: ["img", "picture", "source", "video", "audio", "track", "iframe", "object", "embed", "svg", "math", "form", "input", "button", "textarea", "select", "style", "link", "meta", "base"],
  FORBID_ATTR: ["style", "srcset", "background", "poster", "ping"],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Sanitized HTML for `text` (Markdown, possibly cut off mid-stream). */
export function render(text) {
  return DOMPurify.sanitize(marked.parse(text), OPTIONS);
}
