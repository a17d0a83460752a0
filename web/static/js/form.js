/**
 * The new-run form, built from `GET /api/v1/catalog`: the datasets with their
 * modalities, the methods with their hyperparameters, and TrainConfig's own schema
 * for everything else. The server validates; each of its errors is shown next to
 * the field it names. `?clone=ID` fills the form from run ID.
 */

import * as api from "./api.js";
import { byId, h, showAlert } from "./dom.js";
import { FieldBase, LocalError, SchemaField } from "./schema-fields.js";
import { modalityOrder } from "./theme.js";

const form = byId("run-form");
const alertBox = byId("form-alert");
const submitButton = byId("submit");
const submitStatus = byId("submit-status");
const MAX_SEEDS = 50;
const LABELS = {
  epochs: "Epochs", batch_size: "Batch size", lr: "Learning rate", weight_decay: "Weight decay", device: "Device",
  data_path: "Data path",
};

/** @type {Map<string, FieldBase>} every field of the form, by the API's name for it */
const fields = new Map();

function add(field, container) {
  fields.set(field.path, field);
  container.append(field.element);
  return field;
}

/** Remove the fields under `prefix` (when another dataset or method is chosen). */
function dropFields(prefix) {
  for (const path of [...fields.keys()]) if (path.startsWith(prefix)) fields.delete(path);
}

/** The modalities of a dataset, as checkboxes; the dataset's default pair checked. */
class ModalitiesField extends FieldBase {
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
class SelectField extends FieldBase {
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

/** "0", "0, 1, 2" or "0-4": one run per seed. Errors from `config.seed` land here too. */
class SeedsField extends FieldBase {
  constructor(value) {
    super("config.seed", "seeds");
    this.input = h("input", { type: "text", id: this.id, name: "seeds", value, inputmode: "numeric", autocomplete: "off" });
    this.element.append(
      h("label", { for: this.id }, "Seeds"), this.input,
      h("p", { class: "help", id: this.helpId }, "One run per seed, e.g. 0, 1, 2 or 0-4; the table of results averages over seeds."),
      this.error);
    this.input.setAttribute("aria-describedby", this.helpId);
  }

  read() {
    const seeds = [];
    for (const part of this.input.value.split(",").map((p) => p.trim()).filter(Boolean)) {
      const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
      if (range) {
        const [low, high] = [Number(range[1]), Number(range[2])];
        if (high < low) throw new LocalError(`has the range ${part}, which runs backwards`);
        for (let seed = low; seed <= high && seeds.length <= MAX_SEEDS; seed += 1) seeds.push(seed);
      } else if (/^\d+$/.test(part)) {
        seeds.push(Number(part));
      } else {
        throw new LocalError(`holds ${JSON.stringify(part)}, which is not a seed (a whole number ≥ 0) or a range like 0-4`);
      }
    }
    if (!seeds.length) throw new LocalError("needs at least one seed, e.g. 0");
    if (seeds.length > MAX_SEEDS) throw new LocalError(`may name at most ${MAX_SEEDS} seeds at once`);
    return [...new Set(seeds)];
  }
}

function showHelp(id, text) {
  byId(id).textContent = text ?? "";
}

function fillSelect(select, items, value) {
  select.replaceChildren(...items.map(([name, label]) => h("option", { value: name }, label)));
  if (value !== undefined && items.some(([name]) => name === value)) select.value = value;
}

/** Build the parts that depend on the dataset: modalities, data path, options. */
function showDataset(catalog, dataset, values = {}) {
  showHelp("dataset-help", dataset.description);
  dropFields("config.modalities");
  dropFields("config.data_path");
  dropFields("config.dataset_params.");
  const modalities = byId("modalities-slot");
  modalities.replaceChildren();
  if (Object.keys(dataset.modalities).length) {
    add(new ModalitiesField(dataset, values.modalities), modalities);
  } else {
    add(new SchemaField("config.modalities", catalog.config_schema.properties.modalities, {
      label: "Modalities", value: values.modalities, placeholder: "names of the arrays, e.g. audio, image",
    }), modalities);
  }
  const dataPath = byId("data-path-slot");
  dataPath.replaceChildren();
  if (dataset.reads_disk) {
    add(new SchemaField("config.data_path", catalog.config_schema.properties.data_path, {
      label: LABELS.data_path, value: values.data_path,
    }), dataPath);
  }
  const options = byId("dataset-params");
  options.replaceChildren();
  const properties = Object.entries(dataset.params.properties ?? {});
  for (const [name, schema] of properties) {
    add(new SchemaField(`config.dataset_params.${name}`, schema, { value: values.dataset_params?.[name] }), options);
  }
  byId("dataset-options").hidden = properties.length === 0;
}

function showMethod(method, values = {}) {
  showHelp("method-help", method.description);
  dropFields("config.params.");
  const container = byId("method-params");
  container.replaceChildren();
  for (const [name, schema] of Object.entries(method.params.properties ?? {})) {
    add(new SchemaField(`config.params.${name}`, schema, { value: values[name] }), container);
  }
}

function showFusion(catalog, name) {
  showHelp("fusion-help", catalog.fusions.find((fusion) => fusion.name === name)?.description);
}

/** The request body of one run, and its seeds. */
function readForm() {
  const config = {};
  const body = { execute: true };
  let seeds = [0];
  const problems = [];
  for (const field of fields.values()) {
    let value;
    try {
      value = field.read();
    } catch (error) {
      if (!(error instanceof LocalError)) throw error;
      problems.push({ field: field.path, message: error.message });
      continue;
    }
    if (field instanceof SeedsField) seeds = value;
    else if (value !== undefined && value !== null) setPath(field.path, value, config, body);
  }
  return { body: { ...body, config }, seeds, problems };
}

function setPath(path, value, config, body) {
  const [root, ...rest] = path.split(".");
  if (root !== "config") {
    if (root === "tags") body.tags = value;
    else if (value !== "") body[root] = value;
    return;
  }
  let node = config;
  for (const part of rest.slice(0, -1)) node = node[part] ??= {};
  node[rest.at(-1)] = value;
}

/** The suffix a run of several seeds gets in its name: "miles tau 0.2 (seed 3)". */
const SEED_SUFFIX = / \(seed \d+\)$/;
/** Whether the run cloned named its seed: its clones then name theirs, not the old one. */
let nameSaysSeed = false;

/** The field that an API error names, or the nearest field above it ("config.modalities.1" -> modalities). */
function fieldFor(name) {
  for (let path = name; path; path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "") {
    if (fields.has(path)) return fields.get(path);
  }
  return null;
}

function clearErrors() {
  showAlert(alertBox, "");
  for (const field of fields.values()) field.clearError();
}

/** Put each error next to its field; those without a field go in the alert above the form. */
function showErrors(detail, errors) {
  const unplaced = [];
  let first = null;
  for (const error of errors) {
    const field = fieldFor(error.field);
    if (field) {
      field.showError(error.message);
      first ??= field;
    } else {
      unplaced.push(`${error.field}: ${error.message}`);
    }
  }
  const count = errors.length - unplaced.length;
  const summary = count ? `${count === 1 ? "One field needs" : `${count} fields need`} attention.` : detail;
  showAlert(alertBox, [summary, ...unplaced].join(" "));
  (first ?? alertBox).focus?.();
  if (!first) alertBox.scrollIntoView({ block: "center" });
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const { body, seeds, problems } = readForm();
  if (problems.length) {
    showErrors("", problems);
    return;
  }
  submitButton.disabled = true;
  form.setAttribute("aria-busy", "true");
  const created = [];
  try {
    for (const seed of seeds) {
      submitStatus.textContent = seeds.length > 1 ? `Submitting run ${created.length + 1} of ${seeds.length}…` : "Submitting…";
      const name = body.name && (seeds.length > 1 || nameSaysSeed) ? `${body.name} (seed ${seed})` : body.name;
      const run = await api.post("/runs", { ...body, name, config: { ...body.config, seed } });
      created.push(run.id);
    }
  } catch (error) {
    submitStatus.textContent = "";
    showErrors(error.message, error.errors ?? []);
    if (created.length) {
      alertBox.append(` Runs ${created.map((id) => `#${id}`).join(", ")} were created before this error.`);
    }
    return;
  } finally {
    submitButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
  submitStatus.textContent = "Submitted.";
  location.assign(api.url(created.length === 1 ? `/runs/${created[0]}` : `/?ids=${created.join(",")}`));
}

function showSeedCount() {
  try {
    const count = fields.get("config.seed").read().length;
    submitButton.textContent = count > 1 ? `Start ${count} runs` : "Start run";
  } catch {
    submitButton.textContent = "Start runs";
  }
}

async function build() {
  const cloneId = new URLSearchParams(location.search).get("clone");
  // Only the catalogue is needed to build the form: without the run to clone or the list of
  // experiments, it starts from the defaults and says why.
  const problems = [];
  const [catalog, experiments, source] = await Promise.all([
    api.catalog(),
    api.get("/experiments", { limit: 500, sort: "name" }).catch((error) => {
      problems.push(`The experiments cannot be listed (${error.message}); type a name to use one.`);
      return { items: [] };
    }),
    cloneId ? api.get(`/runs/${encodeURIComponent(cloneId)}`).catch((error) => {
      problems.push(error.status === 404 || error.status === 422
        ? `There is no run ${cloneId} to clone; the form starts from the defaults.`
        : `Run ${cloneId} cannot be loaded to clone (${error.message}); the form starts from the defaults.`);
      return null;
    }) : null,
  ]);
  showAlert(alertBox, problems.join(" "));
  const config = source?.config ?? {};
  const schema = catalog.config_schema;
  if (source) {
    byId("form-title").textContent = `Clone run #${source.id}`;
    byId("form-subtitle").replaceChildren("Filled from ", h("a", { href: api.url(`/runs/${source.id}`) }, source.name),
      ". Change what you like; a new run is created.");
    document.title = `Clone run #${source.id} · MILES`;
  }
  byId("experiment-names").replaceChildren(...experiments.items.map((e) => h("option", { value: e.name })));

  const datasetSelect = byId("dataset");
  fillSelect(datasetSelect, catalog.datasets.map((d) => [d.name, d.title]), config.dataset);
  fields.set("config.dataset", new SelectField("config.dataset", datasetSelect));
  const datasetOf = () => catalog.datasets.find((d) => d.name === datasetSelect.value);
  showDataset(catalog, datasetOf(), config);
  datasetSelect.addEventListener("change", () => showDataset(catalog, datasetOf()));

  const methodSelect = byId("method");
  fillSelect(methodSelect, catalog.methods.map((m) => [m.name, m.title]), config.method ?? schema.properties.method.default);
  fields.set("config.method", new SelectField("config.method", methodSelect));
  const methodOf = () => catalog.methods.find((m) => m.name === methodSelect.value);
  showMethod(methodOf(), config.params);
  methodSelect.addEventListener("change", () => showMethod(methodOf()));

  const fusionSelect = byId("fusion");
  fillSelect(fusionSelect, catalog.fusions.map((f) => [f.name, f.name]), config.fusion ?? schema.properties.fusion.default);
  fields.set("config.fusion", new SelectField("config.fusion", fusionSelect));
  showFusion(catalog, fusionSelect.value);
  fusionSelect.addEventListener("change", () => showFusion(catalog, fusionSelect.value));

  const training = byId("training-fields");
  for (const name of ["epochs", "batch_size", "lr", "weight_decay"]) {
    const property = { ...schema.properties[name] };
    if (name === "epochs") property.maximum = Math.min(property.maximum ?? Infinity, catalog.limits.max_epochs);
    add(new SchemaField(`config.${name}`, property, { label: LABELS[name], value: config[name] }), training);
  }
  add(new SchemaField("config.device", schema.properties.device, {
    label: LABELS.device, value: config.device, list: "device-names",
  }), training);
  add(new SeedsField(source ? String(source.seed ?? 0) : "0"), training);

  const model = schema.$defs?.ModelConfig?.properties ?? {};
  for (const [name, property] of Object.entries(model)) {
    add(new SchemaField(`config.model.${name}`, property, { value: config.model?.[name] }), byId("model-fields"));
  }

  const runFields = byId("run-fields");
  nameSaysSeed = SEED_SUFFIX.test(source?.name ?? "");
  add(new SchemaField("name", { type: "string", maxLength: 200, description: "Default: a description of the config." }, {
    label: "Name", value: source?.name.replace(SEED_SUFFIX, ""), placeholder: "e.g. miles tau 0.2",
  }), runFields);
  add(new SchemaField("experiment", { type: "string", maxLength: 200, description: "A group of runs to compare; created when new." }, {
    label: "Experiment", value: source?.experiment ?? new URLSearchParams(location.search).get("experiment"), list: "experiment-names",
  }), runFields);
  add(new SchemaField("tags", { type: "array", items: { type: "string" }, description: "Labels to filter by, comma-separated." }, {
    label: "Tags", value: source?.tags,
  }), runFields);

  form.addEventListener("input", (event) => {
    if (event.target.name === "seeds") showSeedCount();
  });
  form.addEventListener("submit", submit);
  showSeedCount();
  submitButton.disabled = false;
  form.removeAttribute("aria-busy");
}

build().catch((error) => {
  showAlert(alertBox, `The form cannot be built: ${error.message}`);
});
