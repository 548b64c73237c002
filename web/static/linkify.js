// Message text as DOM: text nodes, with http(s) URLs as links. Nothing in the
// text is ever parsed as markup, and no other scheme becomes a link.

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'"\]}>]+$/;

/** Append `text` to `parent` as text nodes and `<a>` elements for its http and https URLs. */
export function appendLinkified(parent, text) {
  let done = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = trimUrl(match[0]);
    const href = safeHref(url);
    if (!href) continue;
    parent.append(text.slice(done, match.index), link(href, url));
    done = match.index + url.length;
  }
  parent.append(text.slice(done));
}

/** Punctuation that ends a sentence is not part of the link; a ")" is, when the URL opened one. */
function trimUrl(url) {
  let trimmed = url.replace(TRAILING_PUNCTUATION, "");
  while (trimmed.endsWith(")") && count(trimmed, "(") < count(trimmed, ")")) {
    trimmed = trimmed.slice(0, -1).replace(TRAILING_PUNCTUATION, "");
  }
  return trimmed;
}

function count(text, character) {
  return text.split(character).length - 1;
}

/** The normalised URL if it parses and is http or https, else null. */
function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function link(href, label) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = label;
  anchor.rel = "noopener noreferrer";
  anchor.target = "_blank";
  return anchor;
}
