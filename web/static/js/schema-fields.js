/**
 * Form fields built from the JSON schema the API publishes (pydantic's): type,
 * default, range and help all come from the server, so a new hyperparameter
 * appears in the form without touching the page.
 *
 * Every field knows the dotted name the API uses for it ("config.params.tau"), so
 * that an error the API reports for that name is shown next to it, and linked to
 * the input with aria-describedby.
 */

import { h } from "./dom.js";
import { number } from "./format.js";

/** A value the field itself cannot turn into JSON (shown like an API error). */
export class LocalError extends Error {}

let counter = 0;

/** "Utilization Split" -> "Utilization split" */
function sentence(text) {
  return text ? text[0].toUpperCase() + text.slice(1).toLowerCase() : "";
}

/** The schema without its `anyOf: [X, {type: "null"}]` wrapper, and whether null is allowed. */
function unwrap(schema) {
  const options = schema.anyOf ?? schema.oneOf;
  if (!options) return { inner: schema, nullable: false };
  const concrete = options.filter((option) => option.type !== "null");
  const inner = concrete.length === 1 ? { ...schema, ...concrete[0] } : { ...schema, type: "json" };
  delete inner.anyOf;
  delete inner.oneOf;
  return { inner, nullable: concrete.length < options.length };
}

/** "0 ≤ value ≤ 1", "value > 0" from minimum/maximum and their exclusive forms. */
function rangeText(schema) {
  const low = schema.exclusiveMinimum ?? schema.minimum;
  const high = schema.exclusiveMaximum ?? schema.maximum;
  const lowOp = schema.exclusiveMinimum !== undefined ? "<" : "≤";
  const highOp = schema.exclusiveMaximum !== undefined ? "<" : "≤";
  if (low !== undefined && high !== undefined) return `${number(low)} ${lowOp} value ${highOp} ${number(high)}`;
  if (low !== undefined) return `value ${lowOp === "<" ? ">" : "≥"} ${number(low)}`;
  if (high !== undefined) return `value ${highOp} ${number(high)}`;
  return "";
}

/** Shared behaviour: the help and error lines of a field and its aria wiring. */
export class FieldBase {
  /**
   * @param {string} path  The API's name of the field, e.g. "config.params.tau".
   * @param {string} id  The id of the focusable control.
   */
  constructor(path, id) {
    this.path = path;
    this.id = id;
    this.helpId = `${id}-help`;
    this.errorId = `${id}-error`;
    this.error = h("p", { class: "error", id: this.errorId, hidden: true });
    this.element = h("div", { class: "field", dataset: { field: path } });
  }

  /** The elements that carry aria-invalid and aria-describedby. */
  get controls() {
    return [document.getElementById(this.id)].filter(Boolean);
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
    this.element.classList.add("invalid");
    for (const control of this.controls) {
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", `${this.helpId} ${this.errorId}`);
    }
  }

  clearError() {
    this.error.textContent = "";
    this.error.hidden = true;
    this.element.classList.remove("invalid");
    for (const control of this.controls) {
      control.removeAttribute("aria-invalid");
      control.setAttribute("aria-describedby", this.helpId);
    }
  }

  focus() {
    this.controls[0]?.focus();
  }
}

/** One input for one schema property. */
export class SchemaField extends FieldBase {
  /**
   * @param {string} path  e.g. "config.params.tau"
   * @param {object} schema  The property's JSON schema.
   * @param {{label?: string, value?: unknown, list?: string, placeholder?: string}} [options]
   */
  constructor(path, schema, { label, value, list, placeholder } = {}) {
    super(path, `f${++counter}-${path.replace(/[^A-Za-z0-9]+/g, "-")}`);
    const { inner, nullable } = unwrap(schema);
    this.schema = inner;
    this.nullable = nullable;
    this.kind = kindOf(inner);
    const fallback = inner.default;
    this.defaultText = fallback !== undefined && fallback !== null && typeof fallback !== "object" ? String(fallback) : "";
    this.control = this.build(list, placeholder ?? (this.defaultText ? `default ${this.defaultText}` : undefined));
    const range = rangeText(inner);
    const defaults = this.defaultText ? `default ${this.defaultText}` : "";
    const text = label ?? sentence(inner.title ?? path);
    const head = this.kind === "boolean"
      ? [h("label", { class: "check", for: this.id }, this.control, text)]
      : [h("label", { for: this.id }, text), this.control];
    const limits = [range, defaults].filter(Boolean).join(" · ");
    this.element.append(
      ...head,
      h("p", { class: "help", id: this.helpId }, inner.description ?? "", limits ? h("span", { class: "range" }, limits) : null),
      this.error,
    );
    this.control.setAttribute("aria-describedby", this.helpId);
    this.write(value === undefined ? inner.default : value);
  }

  build(list, placeholder) {
    const common = { id: this.id, name: this.path };
    switch (this.kind) {
      case "enum":
        return h("select", common, ...this.schema.enum.map((option) => h("option", { value: option }, String(option))));
      case "boolean":
        return h("input", { ...common, type: "checkbox" });
      case "integer":
      case "number":
        return h("input", {
          ...common, type: "number", inputmode: this.kind === "integer" ? "numeric" : "decimal",
          step: this.kind === "integer" ? 1 : "any", min: this.schema.minimum ?? this.schema.exclusiveMinimum,
          max: this.schema.maximum ?? this.schema.exclusiveMaximum, placeholder,
        });
      case "list":
        return h("input", { ...common, type: "text", placeholder: placeholder ?? "comma-separated", autocomplete: "off" });
      case "json":
        return h("textarea", { ...common, rows: 2, spellcheck: "false", placeholder: placeholder ?? "JSON, e.g. {\"name\": 1.0}" });
      default:
        return h("input", { ...common, type: "text", list, placeholder, autocomplete: "off", maxlength: this.schema.maxLength });
    }
  }

  /** Show `value` (a config value) in the control. */
  write(value) {
    const control = this.control;
    if (this.kind === "boolean") control.checked = Boolean(value);
    else if (value === undefined || value === null) control.value = "";
    else if (this.kind === "list") control.value = Array.isArray(value) ? value.join(", ") : String(value);
    else if (this.kind === "json") control.value = Object.keys(value).length === 0 ? "" : JSON.stringify(value);
    else control.value = String(value);
  }

  /**
   * The value to send; undefined leaves the field out (the field has no default, or an empty
   * object is its default). A field with a default is never left empty silently: that is an
   * error naming the default, which the field also shows as its placeholder.
   * @throws {LocalError} when the text cannot be read as the field's type, or is empty.
   */
  read() {
    const control = this.control;
    if (this.kind === "boolean") return control.checked;
    if (control.validity?.badInput) throw new LocalError("is not a number");
    const text = control.value.trim();
    if (text === "") {
      if (this.nullable) return null;
      if (this.defaultText) throw new LocalError(`is empty: enter a value (the default is ${this.defaultText})`);
      if (this.kind === "json" && isEmptyObject(this.schema.default)) return undefined;
      if (this.schema.default !== undefined) throw new LocalError("is empty: enter a value");
      return undefined;
    }
    switch (this.kind) {
      case "integer":
      case "number":
        return Number(text);
      case "list":
        return text.split(",").map((item) => item.trim()).filter(Boolean);
      case "json":
        try {
          return JSON.parse(text);
        } catch (error) {
          throw new LocalError(`is not valid JSON (${error.message})`);
        }
      case "enum": {
        const option = this.schema.enum.find((candidate) => String(candidate) === text);
        return option === undefined ? text : option;
      }
      default:
        return text;
    }
  }
}

function isEmptyObject(value) {
  return value !== null && typeof value === "object" && Object.keys(value).length === 0;
}

function kindOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (schema.type === "array" && schema.items?.type === "string") return "list";
  if (["boolean", "integer", "number", "string"].includes(schema.type)) return schema.type;
  return "json";
}
