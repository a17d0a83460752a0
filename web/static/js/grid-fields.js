/**
 * What makes the new-run form a grid: several methods and fusions checked at once
 * (with several seeds, one run per combination, sent together to `POST /api/v1/grids`
 * and grouped as an experiment), and where the grid's errors go in the form.
 */

import { h } from "./dom.js";
import { FieldBase, LocalError } from "./schema-fields.js";

/** Checkboxes of catalogue choices (methods, fusions); at least one must stay checked. */
export class ChoicesField extends FieldBase {
  /**
   * @param {string} path  The API's name of the single-run field, e.g. "config.method".
   * @param {{legend: string, what: string, help: string, choices: {value: string, label: string, title?: string}[], checked: string[]}} options
   */
  constructor(path, { legend, what, help, choices, checked }) {
    super(path, `choices-${path.replace(/[^A-Za-z0-9]+/g, "-")}`);
    this.what = what;
    const picked = new Set(checked);
    const boxes = choices.map(({ value, label, title }, index) => h("label", { class: "check choice", title },
      h("input", { type: "checkbox", name: path, value, id: index ? `${this.id}-${index}` : this.id, checked: picked.has(value) }),
      label));
    this.element.append(h("fieldset", { class: "checks", "aria-describedby": this.helpId },
      h("legend", {}, legend), ...boxes, h("p", { class: "help", id: this.helpId }, help), this.error));
  }

  get controls() {
    return [...this.element.querySelectorAll("input")];
  }

  /** The checked values, in the catalogue's order. */
  read() {
    const values = this.controls.filter((box) => box.checked).map((box) => box.value);
    if (!values.length) throw new LocalError(`needs at least one ${this.what} checked`);
    return values;
  }

  /** Check exactly ``values`` (a preset's method or fusion). */
  write(values) {
    for (const box of this.controls) box.checked = values.includes(box.value);
  }

  /** The checked values, or none when nothing is checked (for counting while the user types). */
  checked() {
    return this.controls.filter((box) => box.checked).map((box) => box.value);
  }
}

/**
 * The form's field for a field the API names: a grid's `grid.config.epochs` is the form's
 * `config.epochs`, `grid.params.miles.tau` its `params.miles.tau`, `grid.methods.1` the methods.
 * A single run's `config.params.tau` belongs to its one method.
 */
export function formPath(field, methods) {
  const grid = /^grid\.(config|params|methods|fusions|seeds)(\.(.*))?$/.exec(field);
  if (grid) {
    const [, part, , rest] = grid;
    if (part === "config") return `config.${rest ?? ""}`.replace(/\.$/, "");
    if (part === "params") return rest ? `params.${rest}` : "config.method";
    return { methods: "config.method", fusions: "config.fusion", seeds: "config.seed" }[part];
  }
  const param = /^config\.params\.(.+)$/.exec(field);
  return param && methods.length === 1 ? `params.${methods[0]}.${param[1]}` : field;
}

/** How many runs a grid makes: a method of one modality alone runs once per modality, others once per fusion. */
export function runCount(catalog, methods, fusions, seeds, modalities) {
  const single = new Set(catalog.methods.filter((m) => m.single_modality).map((m) => m.name));
  return methods.reduce((sum, method) => sum + (single.has(method) ? modalities : fusions), 0) * seeds;
}

/** The body of `POST /api/v1/grids` from the form's single-run body and its choices. */
export function gridBody(body, { methods, fusions, seeds, params }) {
  const config = { ...body.config };
  for (const axis of ["method", "fusion", "seed", "params"]) delete config[axis];
  const grid = { config, methods, fusions, seeds, params: Object.fromEntries(methods.map((m) => [m, params[m] ?? {}])) };
  return { experiment: body.experiment, name: body.name, tags: body.tags, grid };
}
