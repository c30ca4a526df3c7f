// Building the page: elements made with textContent only. Names, messages and options come
// from tenants and are hostile; nothing of them is ever parsed as HTML.

/**
 * h("a", {href: "#/x", class: "btn", onclick: fn}, "text", child, ...)
 * Attributes named on* become listeners; `text` sets textContent; false/null are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      element.textContent = String(value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit",
  });
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function fmtNumber(n) {
  return Number(n).toLocaleString("en-US");
}

/** "1 date", "36,500 dates". */
export function plural(n, word) {
  return `${fmtNumber(n)} ${word}${n === 1 ? "" : "s"}`;
}

/** A status as text in a badge: the colour only repeats what the word says. */
export function statusBadge(status) {
  return h("span", { class: `badge badge-${status.toLowerCase()}`, text: status });
}

/** A line of text telling the user what went wrong, announced by screen readers. */
export function errorLine(error) {
  return h("p", { class: "error", role: "alert", text: messageOf(error) });
}

export function messageOf(error) {
  if (error && error.code) {
    const detail = error.description ? ` (${error.description})` : "";
    return `${error.message}${detail}`;
  }
  return error && error.message ? error.message : String(error);
}
