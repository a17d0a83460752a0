/**
 * The new-run form, built from `GET /api/v1/catalog`: the datasets with their
 */

import * as api from "./api.js";
import { byId, h, showAlert } from "./dom.js";
import { FieldSet, ModalitiesField, SelectField, fillSelect, showDataset, showHelp } from "./form-fields.js";
import { ChoicesField, formPath, gridBody, runCount } from "./grid-fields.js";
import { FieldBase, LocalError, SchemaField } from "./schema-fields.js";

const form = byId("run-form");
const alertBox = byId("form-alert");
const submitButton = byId("submit");
const submitStatus = byId("submit-status");
const MAX_SEEDS = 50;
const LABELS = {
  epochs: "Epochs", batch_size: "Batch size", optimizer: "Optimizer", momentum: "Momentum (SGD)", lr: "Learning rate",
  weight_decay: "Weight decay", device: "Device",
};

// An error the API names in a grid's terms (grid.config.epochs, grid.params.miles.tau) lands on the form's field.
const fieldSet = new FieldSet(alertBox, (name) => formPath(name, fieldSet.fields.get("config.method")?.checked() ?? []));
const fields = fieldSet.fields;
const add = (field, container) => fieldSet.add(field, container);
const dropFields = (prefix) => fieldSet.drop(prefix);

/** The preset select: its name is sent (the server records it), or nothing for "None". */
class PresetField extends SelectField {
  read() {
    return this.select.value || undefined;
  }
}

/** A config's values as the form's field paths: {"epochs": 3, "model": {"embed_dim": 8}} -> config.epochs, config.model.embed_dim. */
function fieldValues(config) {
  const values = [];
  for (const [name, value] of Object.entries(config)) {
    if (value && typeof value === "object" && !Array.isArray(value) && name !== "params" && name !== "dataset_params") {
      for (const [inner, item] of Object.entries(value)) values.push([`config.${name}.${inner}`, item]);
    } else {
      values.push([`config.${name}`, value]);
    }
  }
  return values;
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

function showMethods(catalog, checked, values = {}) {
  const container = byId("method-params");
  const shown = new Map([...container.children].map((node) => [node.dataset.method, node]));
  for (const [name, node] of shown) {
    if (!checked.includes(name)) {
      dropFields(`params.${name}.`);
      node.remove();
    }
  }
  for (const method of catalog.methods.filter((m) => checked.includes(m.name))) {
    let node = shown.get(method.name);
    if (!node) {
      const grid = h("div", { class: "grid" });
      node = h("div", { class: "method-params", dataset: { method: method.name } },
        h("h3", {}, method.title), h("p", { class: "help" }, method.description), grid);
      for (const [name, schema] of Object.entries(method.params.properties ?? {})) {
        add(new SchemaField(`params.${method.name}.${name}`, schema, { value: values[name] }), grid);
      }
    }
    container.append(node);
  }
}

/** The request body of one run, and the form's choices: seeds, methods, fusions and each method's params. */
function readForm() {
  const config = {};
  const body = { execute: true };
  const choices = { seeds: [0], methods: [], fusions: [], params: {} };
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
    const param = /^params\.([^.]+)\.(.+)$/.exec(field.path);
    if (field instanceof SeedsField) choices.seeds = value;
    else if (field.path === "config.method") choices.methods = value;
    else if (field.path === "config.fusion") choices.fusions = value;
    else if (param) {
      if (value !== undefined && value !== null) (choices.params[param[1]] ??= {})[param[2]] = value;
    } else if (value !== undefined && value !== null) setPath(field.path, value, config, body);
  }
  const [method] = choices.methods;
  const single = { ...body, config: { ...config, method, fusion: choices.fusions[0], params: choices.params[method] ?? {} } };
  return { body: single, choices, problems };
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

async function submit(event) {
  event.preventDefault();
  fieldSet.clearErrors();
  const { body, choices, problems } = readForm();
  if (problems.length) {
    fieldSet.showErrors("", problems);
    return;
  }
  submitButton.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    if (choices.methods.length > 1 || choices.fusions.length > 1) await submitGrid(body, choices);
    else await submitSeeds(body, choices.seeds);
  } finally {
    submitButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/** Several methods or fusions: one grid, created whole or not at all, then its experiment's page. */
async function submitGrid(body, choices) {
  submitStatus.textContent = "Submitting the grid…";
  let answer;
  try {
    answer = await api.post("/grids", gridBody(body, choices));
  } catch (error) {
    submitStatus.textContent = "";
    fieldSet.showErrors(error.message, error.errors ?? []);
    return;
  }
  submitStatus.textContent = "Submitted.";
  location.assign(api.url(`/experiments/${answer.experiment.id}`));
}

/** One method and fusion: a run per seed, then that run's page (or the list of them). */
async function submitSeeds(body, seeds) {
  const created = [];
  let unserved = null;
  try {
    for (const seed of seeds) {
      submitStatus.textContent = seeds.length > 1 ? `Submitting run ${created.length + 1} of ${seeds.length}…` : "Submitting…";
      const name = body.name && (seeds.length > 1 || nameSaysSeed) ? `${body.name} (seed ${seed})` : body.name;
      const run = await api.post("/runs", { ...body, name, config: { ...body.config, seed } });
      created.push(run.id);
      unserved ??= run.unserved;
    }
  } catch (error) {
    submitStatus.textContent = "";
    fieldSet.showErrors(error.message, error.errors ?? []);
    if (created.length) {
      alertBox.append(` Runs ${created.map((id) => `#${id}`).join(", ")} were created before this error.`);
    }
    return;
  }
  submitStatus.textContent = "Submitted.";
  const target = api.url(created.length === 1 ? `/runs/${created[0]}` : `/?ids=${created.join(",")}`);
  if (unserved) {
    showUnserved(unserved, created, target);
    return;
  }
  location.assign(target);
}

/** The runs were queued, but no live worker consumes their queue: say so, with the command, before leaving. */
function showUnserved(unserved, created, target) {
  const box = byId("form-warning");
  const what = created.length === 1 ? `Run #${created[0]} is queued` : `${created.length} runs are queued`;
  box.replaceChildren(
    h("strong", {}, `${what}, but no live worker consumes the ${unserved.queue} queue`),
    h("p", {}, "It waits until one starts. On a machine that reaches this server's database and queue, run ",
      h("code", {}, unserved.command), "."),
    h("p", {}, h("a", { href: target, class: "button" }, created.length === 1 ? "Open the run" : "Open the runs"),
      " ", h("a", { href: api.url("/workers") }, "See the workers")));
  box.hidden = false;
  box.focus();
}

/** "Start run", "Start 3 runs", "Start a grid of 12 runs". */
function showRunCount(catalog) {
  const methods = fields.get("config.method").checked();
  const fusions = fields.get("config.fusion").checked();
  let seeds;
  try {
    seeds = fields.get("config.seed").read().length;
  } catch {
    submitButton.textContent = "Start runs";
    return;
  }
  const pair = fields.get("config.modalities");
  const modalities = pair instanceof ModalitiesField ? pair.read().length : 2;
  const count = runCount(catalog, methods, fusions.length, seeds, modalities);
  const grid = methods.length > 1 || fusions.length > 1;
  submitButton.textContent = grid ? `Start a grid of ${count} runs` : count > 1 ? `Start ${count} runs` : "Start run";
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

  const presetSelect = byId("preset");
  fillSelect(presetSelect, [["", "None"], ...catalog.presets.map((p) => [p.name, p.title])], config.preset ?? "");
  fields.set("config.preset", new PresetField("config.preset", presetSelect));
  const presetOf = () => catalog.presets.find((p) => p.name === presetSelect.value);
  const describePreset = () => {
    const preset = presetOf();
    showHelp("preset-help", preset ? `${preset.description} Metric: ${preset.metric}. Any field can still be changed.`
      : "The paper's setting for one of its four tasks: choose one to fill the form with it.");
  };
  describePreset();

  const datasetSelect = byId("dataset");
  fillSelect(datasetSelect, catalog.datasets.map((d) => [d.name, d.title]), config.dataset);
  fields.set("config.dataset", new SelectField("config.dataset", datasetSelect));
  const datasetOf = () => catalog.datasets.find((d) => d.name === datasetSelect.value);
  showDataset(fieldSet, catalog, datasetOf(), config);
  datasetSelect.addEventListener("change", () => {
    showDataset(fieldSet, catalog, datasetOf());
    // Encoders, depths and weights are named by modality: another dataset's modalities do not have them.
    for (const name of ["encoders", "depths", "pretrained"]) fields.get(`config.model.${name}`)?.write({});
    if (presetOf() && presetOf().config.dataset !== datasetSelect.value) presetSelect.value = "";
    describePreset();
  });

  const methods = add(new ChoicesField("config.method", {
    legend: "Methods", what: "method", checked: [config.method ?? schema.properties.method.default],
    help: "Check several to compare them: with several methods or fusions, every combination runs once per seed, "
      + "grouped as the experiment named below.",
    choices: catalog.methods.map((m) => ({ value: m.name, label: m.title, title: m.description })),
  }), byId("methods-slot"));
  showMethods(catalog, methods.checked(), config.params);
  methods.element.addEventListener("change", () => showMethods(catalog, methods.checked()));

  const fusions = add(new ChoicesField("config.fusion", {
    legend: "Fusions", what: "fusion", checked: [config.fusion ?? schema.properties.fusion.default],
    help: "How the modality features are fused before the fused head (a method of one modality alone has none).",
    choices: catalog.fusions.map((f) => ({ value: f.name, label: f.name, title: f.description })),
  }), byId("fusions-slot"));

  const training = byId("training-fields");
  for (const name of ["epochs", "batch_size", "optimizer", "momentum", "lr", "weight_decay"]) {
    const property = { ...schema.properties[name] };
    if (name === "epochs") property.maximum = Math.min(property.maximum ?? Infinity, catalog.limits.max_epochs);
    add(new SchemaField(`config.${name}`, property, { label: LABELS[name], value: config[name] }), training);
  }
  add(new SchemaField("config.device", schema.properties.device, {
    label: LABELS.device, value: config.device, list: "device-names",
  }), training);
  add(new SeedsField(source ? String(source.seed ?? 0) : "0"), training);

  for (const [section, definition, container] of [["model", "ModelConfig", "model-fields"], ["performance", "PerformanceConfig", "performance-fields"]]) {
    for (const [name, property] of Object.entries(schema.$defs?.[definition]?.properties ?? {})) {
      add(new SchemaField(`config.${section}.${name}`, property, { value: config[section]?.[name] }), byId(container));
    }
  }

  presetSelect.addEventListener("change", () => {
    describePreset();
    const preset = presetOf();
    if (!preset) return;
    datasetSelect.value = preset.config.dataset;
    showDataset(fieldSet, catalog, datasetOf(), preset.config);
    methods.write([preset.config.method]);
    showMethods(catalog, methods.checked());
    fusions.write([preset.config.fusion]);
    const params = Object.entries(preset.config.params ?? {}).map(([name, value]) => [`params.${preset.config.method}.${name}`, value]);
    for (const [path, value] of [...fieldValues(preset.config), ...params]) {
      const field = fields.get(path);
      if (field instanceof SchemaField) field.write(value);
    }
  });

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

  form.addEventListener("input", () => showRunCount(catalog));
  form.addEventListener("submit", submit);
  showRunCount(catalog);
  submitButton.disabled = false;
  form.removeAttribute("aria-busy");
}

build().catch((error) => {
  showAlert(alertBox, `The form cannot be built: ${error.message}`);
});
