/**
 * Building DOM nodes without HTML strings: text always goes in as text nodes,
 * so nothing a user typed (a run name, a tag, an error) is ever parsed as markup.
 */

/**
 * `h("a", {href: "/runs/1", class: "link"}, "run ", name)`.
 * Props: `class`, `dataset` (an object), `on<Event>` (a listener), `true` for a bare
 * attribute; `false`, null and undefined leave the attribute out. Children: nodes,
 * strings and numbers (as text), arrays of those; null and false are skipped.
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2).toLowerCase(), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** The element with this id; an error naming it when the template lacks it. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no element #${id}`);
  return node;
}

/**
 * What the server embedded in the page as the JSON block `id`: the first answers of the API its script
 * would ask for, so that the first charts are drawn without waiting for them. Null when the page holds
 * none (then the script asks).
 */
export function preloaded(id) {
  const block = document.getElementById(id);
  return block ? JSON.parse(block.textContent) : null;
}

/** Show `message` in an alert element (or hide it when message is empty). */
export function showAlert(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/** Call `fn` at most once per `ms`, with the last arguments. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * Call `tick` every `ms` while `active()` says so, pausing while the tab is hidden
 * (and ticking at once when it is shown again).
 * @returns {{poke: () => void}} `poke` (re)starts the timer, e.g. after a page loads.
 */
export function poll(tick, ms, active) {
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    if (active() && !document.hidden) timer = setTimeout(run, ms);
  };
  const run = async () => {
    try {
      await tick();
    } finally {
      schedule();
    }
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && active()) run();
  });
  return { poke: schedule };
}
