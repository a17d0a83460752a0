/**
 * The New sweep form, built from `GET /api/v1/catalog`: the datasets, the methods with their
 * hyperparameters, TrainConfig's schema for the fields of every run and for what can be
 * searched, and the sweep's own schema (sampler, budget, ...). The server validates; each of
 * its errors is shown next to the field it names ("space.params.tau.low" next to tau's row).
 */

import * as api from "./api.js";
import { byId, h, showAlert } from "./dom.js";
import { FieldSet, SelectField, fillSelect, showDataset } from "./form-fields.js";
import { FieldBase, LocalError, SchemaField } from "./schema-fields.js";

const form = byId("sweep-form");
const alertBox = byId("form-alert");
const submitButton = byId("submit");
const submitStatus = byId("submit-status");
const fieldSet = new FieldSet(alertBox);
const LABELS = {
  epochs: "Epochs", batch_size: "Batch size", optimizer: "Optimizer", momentum: "Momentum (SGD)", lr: "Learning rate",
  weight_decay: "Weight decay", device: "Device",
  fusion: "Fusion",
};
/** Fields of every run a sweep may search, in this order; the encoders' and the methods' come after. */
const SEARCHABLE = ["lr", "batch_size", "weight_decay", "epochs", "fusion"];
/** Where a ticked range starts, when the schema has no finite bounds to offer. */
const STARTS = { lr: { low: 1e-4, high: 1e-2, log: true }, weight_decay: { low: 1e-6, high: 1e-2, log: true } };

/** The schema without its `anyOf: [X, {type: "null"}]` wrapper. */
function concrete(schema) {
  const options = schema.anyOf?.filter((option) => option.type !== "null");
  return options?.length === 1 ? { ...schema, ...options[0] } : schema;
}

/** The methods to tune, as checkboxes. */
class MethodsField extends FieldBase {
  constructor(methods, chosen, onChange) {
    super("methods", "methods");
    const boxes = methods.map((method) => h("label", { class: "check modality" },
      h("input", { type: "checkbox", name: "method", value: method.name, checked: chosen.includes(method.name), onChange }),
      h("span", { class: "modality-name" }, method.title), h("span", { class: "muted" }, method.name)));
    this.element.append(h("fieldset", { class: "checks", "aria-describedby": this.helpId },
      h("legend", {}, "Methods to tune"), ...boxes,
      h("p", { class: "help", id: this.helpId }, "Each method gets a study of its own and the same budget of trials."),
      this.error));
  }

  get controls() {
    return [...this.element.querySelectorAll("input")];
  }

  read() {
    return this.controls.filter((box) => box.checked).map((box) => box.value);
  }
}

/** One searchable field: a tick to search it, then a range (linear or log) or a list of choices. */
class DimensionField extends FieldBase {
  /**
   * @param {string} path  The config path, e.g. "lr" or "params.tau".
   * @param {object} schema  Its JSON schema.
   * @param {string} label
   * @param {string} note  Which methods have it, for a hyperparameter.
   */
  constructor(path, schema, label, note = "") {
    super(`space.${path}`, `search-${path.replace(/[^A-Za-z0-9]+/g, "-")}`);
    this.schema = concrete(schema);
    this.numeric = ["integer", "number"].includes(this.schema.type);
    const values = this.schema.enum ?? (this.schema.type === "boolean" ? [false, true] : null);
    this.tick = h("input", { type: "checkbox", id: this.id, name: this.path, onChange: () => this.sync() });
    this.mode = h("select", { "aria-label": `${label}: how to search it`, onChange: () => this.sync() },
      ...(this.numeric ? [h("option", { value: "range" }, "range"), h("option", { value: "log" }, "log range")] : []),
      h("option", { value: "choices" }, "choices"));
    const start = STARTS[path] ?? {};
    const bound = (value) => (Number.isFinite(value) ? String(value) : "");
    this.low = h("input", { type: "number", step: "any", "aria-label": `${label}: lowest`, placeholder: "low",
      value: bound(start.low ?? this.schema.minimum) });
    this.high = h("input", { type: "number", step: "any", "aria-label": `${label}: highest`, placeholder: "high",
      value: bound(start.high ?? this.schema.maximum) });
    this.choices = h("input", { type: "text", "aria-label": `${label}: choices`, placeholder: "comma-separated, e.g. 32, 64",
      value: values ? values.join(", ") : "", autocomplete: "off" });
    if (start.log) this.mode.value = "log";
    const help = [this.schema.description, note].filter(Boolean).join(" ");
    this.element.classList.add("dimension");
    this.element.append(
      h("label", { class: "check", for: this.id }, this.tick, `Search ${label[0].toLowerCase()}${label.slice(1)}`),
      h("div", { class: "dimension-values" }, this.mode, this.low, this.high, this.choices),
      h("p", { class: "help", id: this.helpId }, help), this.error);
    this.sync();
  }

  get controls() {
    return [this.tick, this.mode, this.low, this.high, this.choices];
  }

  get searched() {
    return this.tick.checked;
  }

  sync() {
    const ranged = this.mode.value !== "choices";
    for (const control of [this.mode, this.low, this.high, this.choices]) control.disabled = !this.searched;
    this.low.hidden = this.high.hidden = !ranged;
    this.choices.hidden = ranged;
  }

  read() {
    if (!this.searched) return undefined;
    if (this.mode.value !== "choices") {
      if (this.low.validity.badInput || this.high.validity.badInput || !this.low.value || !this.high.value) {
        throw new LocalError("needs a lowest and a highest value");
      }
      return { low: Number(this.low.value), high: Number(this.high.value), ...(this.mode.value === "log" ? { log: true } : {}) };
    }
    const parts = this.choices.value.split(",").map((part) => part.trim()).filter(Boolean);
    if (!parts.length) throw new LocalError("needs at least one choice");
    return { choices: parts.map((part) => this.parse(part)) };
  }

  parse(text) {
    if (this.schema.type === "boolean") return text === "true";
    if (!this.numeric) return text;
    const number = Number(text);
    if (!Number.isFinite(number)) throw new LocalError(`holds ${JSON.stringify(text)}, which is not a number`);
    return number;
  }
}

/** A select among labelled options; `toValue` turns the chosen option into what the API takes. */
class ChoiceField extends FieldBase {
  constructor(path, label, options, help, toValue = (value) => value) {
    super(path, `f-${path}`);
    this.select = h("select", { id: this.id, name: path, "aria-describedby": this.helpId },
      ...options.map(([value, text]) => h("option", { value }, text)));
    this.toValue = toValue;
    this.element.append(h("label", { for: this.id }, label), this.select, h("p", { class: "help", id: this.helpId }, help), this.error);
  }

  read() {
    return this.toValue(this.select.value);
  }
}

/** The objective: the fused head, the weak head, or weights over heads ("fused=0.5, weak=0.5"). */
class ObjectiveField extends ChoiceField {
  constructor(schema) {
    const objective = schema.$defs.Objective;
    super("objective", "Objective", objective.properties.kind.enum.map((kind) => [kind, kind]),
      `${objective.properties.kind.description} Validation metrics only: a sweep never looks at test data.`);
    this.weights = h("input", { type: "text", "aria-label": "Objective weights", placeholder: "fused=0.5, weak=0.5", hidden: true });
    this.select.after(this.weights);
    this.select.addEventListener("change", () => {
      this.weights.hidden = this.select.value !== "weighted";
    });
  }

  get controls() {
    return [this.select, this.weights];
  }

  read() {
    if (this.select.value !== "weighted") return { kind: this.select.value };
    const weights = {};
    for (const part of this.weights.value.split(",").map((p) => p.trim()).filter(Boolean)) {
      const [head, weight] = part.split("=").map((p) => p.trim());
      if (!head || !Number.isFinite(Number(weight))) throw new LocalError(`reads ${JSON.stringify(part)}; write head=weight, e.g. fused=0.5`);
      weights[head] = Number(weight);
    }
    return { kind: "weighted", weights };
  }
}

function rebuildSpace(catalog, methods) {
  const container = byId("space-fields");
  const ticked = new Map([...fieldSet.fields].filter(([path, f]) => path.startsWith("space.") && f.searched).map(([path, f]) => [path, f]));
  fieldSet.drop("space.");
  const rows = [];
  const schema = catalog.config_schema;
  for (const name of SEARCHABLE) rows.push([name, schema.properties[name], LABELS[name], ""]);
  for (const [name, property] of Object.entries(schema.$defs?.ModelConfig?.properties ?? {})) {
    rows.push([`model.${name}`, property, `Encoders: ${property.title?.toLowerCase() ?? name}`, ""]);
  }
  const params = new Map();
  for (const method of catalog.methods.filter((m) => methods.includes(m.name))) {
    for (const [name, property] of Object.entries(method.params.properties ?? {})) {
      if (!params.has(name)) params.set(name, { property, methods: [] });
      params.get(name).methods.push(method.name);
    }
  }
  for (const [name, { property, methods: owners }] of params) {
    rows.push([`params.${name}`, property, property.title ?? name, `(${owners.join(", ")})`]);
  }
  container.replaceChildren();
  for (const [path, property, label, note] of rows) {
    const kind = concrete(property);
    if (!["integer", "number", "boolean"].includes(kind.type) && !kind.enum) continue;
    // A row ticked before the methods changed keeps its values.
    const row = ticked.get(`space.${path}`) ?? new DimensionField(path, property, label, note);
    fieldSet.add(row, container);
  }
}

/** The request body: config paths into `config`, dimensions into `space`, the rest at the top. */
function readForm() {
  const body = { config: {}, space: {} };
  const { values, problems } = fieldSet.read();
  for (const [field, value] of values) {
    if (value === undefined || value === null || value === "") continue;
    const [root, ...rest] = field.path.split(".");
    if (root === "space") {
      body.space[rest.join(".")] = value;
    } else if (root === "config") {
      let node = body.config;
      for (const part of rest.slice(0, -1)) node = node[part] ??= {};
      node[rest.at(-1)] = value;
    } else {
      body[root] = value;
    }
  }
  return { body, problems };
}

async function submit(event) {
  event.preventDefault();
  fieldSet.clearErrors();
  const { body, problems } = readForm();
  if (problems.length) {
    fieldSet.showErrors("", problems);
    return;
  }
  submitButton.disabled = true;
  form.setAttribute("aria-busy", "true");
  submitStatus.textContent = "Starting…";
  let sweep;
  try {
    sweep = await api.post("/sweeps", body);
  } catch (error) {
    submitStatus.textContent = "";
    fieldSet.showErrors(error.message, error.errors ?? []);
    return;
  } finally {
    submitButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
  submitStatus.textContent = "Started.";
  location.assign(api.url(`/sweeps/${sweep.id}`));
}

async function build() {
  const [catalog, experiments] = await Promise.all([
    api.catalog(), api.get("/experiments", { limit: 500, sort: "name" }).catch(() => ({ items: [] })),
  ]);
  const schema = catalog.config_schema;
  const sweepSchema = catalog.sweep_schema;
  byId("experiment-names").replaceChildren(...experiments.items.map((e) => h("option", { value: e.name })));

  const datasetSelect = byId("dataset");
  fillSelect(datasetSelect, catalog.datasets.map((d) => [d.name, d.title]));
  fieldSet.fields.set("config.dataset", new SelectField("config.dataset", datasetSelect));
  const datasetOf = () => catalog.datasets.find((d) => d.name === datasetSelect.value);
  showDataset(fieldSet, catalog, datasetOf());
  datasetSelect.addEventListener("change", () => showDataset(fieldSet, catalog, datasetOf()));
  const fusionSelect = byId("fusion");
  fillSelect(fusionSelect, catalog.fusions.map((f) => [f.name, f.name]), schema.properties.fusion.default);
  fieldSet.fields.set("config.fusion", new SelectField("config.fusion", fusionSelect));

  const methods = new MethodsField(catalog.methods, ["miles"], () => rebuildSpace(catalog, methods.read()));
  fieldSet.add(methods, byId("methods-slot"));

  const training = byId("training-fields");
  for (const name of ["epochs", "batch_size", "optimizer", "momentum", "lr", "weight_decay"]) {
    const property = { ...schema.properties[name] };
    if (name === "epochs") property.maximum = Math.min(property.maximum ?? Infinity, catalog.limits.max_epochs);
    fieldSet.add(new SchemaField(`config.${name}`, property, { label: LABELS[name] }), training);
  }
  fieldSet.add(new SchemaField("config.device", schema.properties.device, { label: LABELS.device, list: "device-names" }), training);
  fieldSet.add(new SchemaField("config.seed", schema.properties.seed, { label: "Seed of the trials" }), training);

  rebuildSpace(catalog, methods.read());

  const search = byId("search-fields");
  const top = sweepSchema.properties;
  fieldSet.add(new SchemaField("sampler", top.sampler, { label: "Sampler" }), search);
  fieldSet.add(new SchemaField("budget", top.budget, { label: "Trials per method", placeholder: "20" }), search);
  fieldSet.add(new SchemaField("parallelism", top.parallelism, { label: "Runs at once" }), search);
  fieldSet.add(new ObjectiveField(sweepSchema), search);
  const pruners = Object.keys(top.pruner.anyOf[0].discriminator.mapping);
  fieldSet.add(new ChoiceField("pruner", "Pruner", [["", "none"], ...pruners.map((p) => [p, p.replace("_", " ")])],
    top.pruner.description, (value) => (value ? { kind: value } : null)), search);
  fieldSet.add(new SchemaField("seeds_for_best", top.seeds_for_best, { label: "Seeds of the best" }), search);
  fieldSet.add(new ChoiceField("preset", "Preset", [["", "none"], ["paper", "the paper's protocol"]],
    "The paper: 80 random configurations per method over the learning rate and the method's numeric hyperparameters, then 5 seeds of the best; what you set here wins."), search);
  fieldSet.add(new SchemaField("seed", top.seed, { label: "Seed of the sampler" }), search);

  const sweepFields = byId("sweep-fields");
  fieldSet.add(new SchemaField("name", { type: "string", maxLength: 200, description: top.name.description }, {
    label: "Name", placeholder: "e.g. tau and mu on mfeat",
  }), sweepFields);
  fieldSet.add(new SchemaField("experiment", { type: "string", maxLength: 200, description: top.experiment.description }, {
    label: "Experiment", list: "experiment-names",
  }), sweepFields);
  fieldSet.add(new SchemaField("tags", { type: "array", items: { type: "string" }, description: "Labels of the sweep's runs, comma-separated." }, {
    label: "Tags",
  }), sweepFields);

  form.addEventListener("submit", submit);
  submitButton.disabled = false;
  form.removeAttribute("aria-busy");
}

build().catch((error) => showAlert(alertBox, `The form cannot be built: ${error.message}`));
