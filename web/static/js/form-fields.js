/**
 * The parts shared by the forms that submit work (New run, New sweep): fields for the
 * catalogue's datasets and selects, and a set of fields that puts each error the API
 * reports next to the field it names.
 */

import { byId, h, showAlert } from "./dom.js";
import { FieldBase, LocalError, SchemaField } from "./schema-fields.js";
import { modalityOrder } from "./theme.js";

/** The modalities of a dataset, as checkboxes; the dataset's default pair checked. */
export class ModalitiesField extends FieldBase {
  constructor(dataset, chosen) {
    super("config.modalities", "modalities");
    this.names = modalityOrder({ datasets: [dataset] }, dataset.name);
    const picked = new Set(chosen ?? dataset.default_modalities);
    const boxes = this.names.map((name) => {
      const spec = dataset.modalities[name];
      return h("label", { class: "check modality" },
        h("input", { type: "checkbox", name: "modality", value: name, id: `modality-${name}`, checked: picked.has(name) }),
        h("span", { class: "modality-name" }, name),
        h("span", { class: "muted" }, `${spec.kind} · ${spec.shape.join("×")}`));
    });
    this.element.append(h("fieldset", { class: "checks", "aria-describedby": this.helpId },
      h("legend", {}, "Modalities"), ...boxes,
      h("p", { class: "help", id: this.helpId }, `At least two. Default pair: ${dataset.default_modalities.join(" + ")}.`),
      this.error));
  }

  get controls() {
    return [...this.element.querySelectorAll("input")];
  }

  /** The checked modalities, the default pair first: the order `miles train` and the demo use too. */
  read() {
    return this.controls.filter((box) => box.checked).map((box) => box.value);
  }
}

/** A select of the template (dataset, method, fusion) with its help and error lines. */
export class SelectField extends FieldBase {
  constructor(path, select) {
    super(path, select.id);
    this.select = select;
    this.element = select.closest(".field");
    this.error = byId(this.errorId);
  }

  read() {
    return this.select.value;
  }
}

/** Every field of a form, by the API's name for it; errors go next to their field, the rest in `alertBox`. */
export class FieldSet {
  /**
   * @param {HTMLElement} alertBox
   * @param {(name: string) => string} [locate]  The form's path of a field the API names, when the two differ.
   */
  constructor(alertBox, locate = (name) => name) {
    this.alertBox = alertBox;
    this.locate = locate;
    /** @type {Map<string, FieldBase>} */
    this.fields = new Map();
  }

  add(field, container) {
    this.fields.set(field.path, field);
    container?.append(field.element);
    return field;
  }

  /** Remove the fields under `prefix` (when another dataset or method is chosen). */
  drop(prefix) {
    for (const path of [...this.fields.keys()]) if (path.startsWith(prefix)) this.fields.delete(path);
  }

  /** The field that an API error names, or the nearest field above it ("config.modalities.1" -> modalities). */
  fieldFor(name) {
    for (let path = this.locate(name); path; path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "") {
      if (this.fields.has(path)) return this.fields.get(path);
    }
    return null;
  }

  /** Every field's value, as `[field, value]` in order, and a problem for each field that cannot be read. */
  read() {
    const values = [];
    const problems = [];
    for (const field of this.fields.values()) {
      try {
        values.push([field, field.read()]);
      } catch (error) {
        if (!(error instanceof LocalError)) throw error;
        problems.push({ field: field.path, message: error.message });
      }
    }
    return { values, problems };
  }

  clearErrors() {
    showAlert(this.alertBox, "");
    for (const field of this.fields.values()) field.clearError();
  }

  /** Put each error next to its field; those without a field go in the alert above the form. */
  showErrors(detail, errors) {
    const unplaced = [];
    let first = null;
    for (const error of errors) {
      const field = this.fieldFor(error.field);
      if (field) {
        field.showError(error.message);
        first ??= field;
      } else {
        unplaced.push(`${error.field}: ${error.message}`);
      }
    }
    const count = errors.length - unplaced.length;
    const summary = count ? `${count === 1 ? "One field needs" : `${count} fields need`} attention.` : detail;
    showAlert(this.alertBox, [summary, ...unplaced].join(" "));
    (first ?? this.alertBox).focus?.();
    if (!first) this.alertBox.scrollIntoView({ block: "center" });
  }
}

export function showHelp(id, text) {
  byId(id).textContent = text ?? "";
}

/** Options `[[value, label], ...]` into `select`, keeping `value` chosen when it is one of them. */
export function fillSelect(select, items, value) {
  select.replaceChildren(...items.map(([name, label]) => h("option", { value: name }, label)));
  if (value !== undefined && items.some(([name]) => name === value)) select.value = value;
}

/**
 * Build the parts of a form that depend on the dataset (the template's #dataset-help, #modalities-slot,
 * #data-path-slot, #dataset-params and #dataset-options): modalities, data path, options.
 */
export function showDataset(fieldSet, catalog, dataset, values = {}) {
  showHelp("dataset-help", dataset.description);
  fieldSet.drop("config.modalities");
  fieldSet.drop("config.data_path");
  fieldSet.drop("config.dataset_params.");
  const modalities = byId("modalities-slot");
  modalities.replaceChildren();
  if (Object.keys(dataset.modalities).length) {
    fieldSet.add(new ModalitiesField(dataset, values.modalities), modalities);
  } else {
    fieldSet.add(new SchemaField("config.modalities", catalog.config_schema.properties.modalities, {
      label: "Modalities", value: values.modalities, placeholder: "names of the arrays, e.g. audio, image",
    }), modalities);
  }
  const dataPath = byId("data-path-slot");
  dataPath.replaceChildren();
  if (dataset.reads_disk) {
    fieldSet.add(new SchemaField("config.data_path", catalog.config_schema.properties.data_path, {
      label: "Data path", value: values.data_path,
    }), dataPath);
  }
  const options = byId("dataset-params");
  options.replaceChildren();
  const properties = Object.entries(dataset.params.properties ?? {});
  for (const [name, schema] of properties) {
    fieldSet.add(new SchemaField(`config.dataset_params.${name}`, schema, { value: values.dataset_params?.[name] }), options);
  }
  byId("dataset-options").hidden = properties.length === 0;
}
