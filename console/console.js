// The imageplane console: a client of the server's public REST API, its introspection API
// (/imageplane/v1/server, /folders, /operations) and, when on, its admin API, with the
// caller's token. It has no other way into the server: whatever it shows, curl can get.
//
// Views are routes of the location's hash (#/, #/folder/ID/KIND, #/resource/KIND/ID,
// #/operations, #/import, #/server). A view draws itself once and then refreshes only its
// live part, on a timer that pauses while the tab is hidden. Everything is built with DOM
// calls, never from HTML strings: names, labels and messages come from users.

const TOKEN_KEY = "imageplane.token";

// How often each view asks again while it is shown, in milliseconds.
const REFRESH = { folders: 3000, folder: 3000, resource: 2000, operations: 2000, server: 5000 };

// The kinds of resource, as the introspection API names them.
const KINDS = {
  "compute.image": { label: "Images", one: "Image", path: "/compute/v1/images", field: "images", idField: "imageId" },
  "compute.snapshot": { label: "Snapshots", one: "Snapshot", path: "/compute/v1/snapshots", field: "snapshots", idField: "snapshotId" },
  "compute.disk": { label: "Disks", one: "Disk", path: "/compute/v1/disks", field: "disks", idField: "diskId" },
  "baremetal.image": { label: "Bare-metal images", one: "Bare-metal image", path: "/baremetal/v1alpha/images", field: "images", idField: "imageId" },
};

// What "copy" means for each kind: the create it calls, with this resource as the source.
const COPIES = {
  "compute.image": { label: "Copy image", kind: "compute.image", source: "imageId" },
  "compute.snapshot": { label: "Create an image from this snapshot", kind: "compute.image", source: "snapshotId" },
  "compute.disk": { label: "Snapshot this disk", kind: "compute.snapshot", source: "diskId" },
};

// The public catalogue's folder: read-only to everyone.
const PUBLIC_FOLDER = "standard-images";

const CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];


// ---------------------------------------------------------------------------- the DOM

/** An element with properties (attributes, `on*` handlers, `dataset`) and children. */
function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "className") element.className = value;
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a live region's content, keeping the keyboard focus on the element with the
 * same `data-key` if there is one. */
function replaceLive(region, ...children) {
  const focused = document.activeElement;
  const key = region.contains(focused) ? focused.dataset.key : undefined;
  region.replaceChildren();
  append(region, children);
  if (key) {
    const again = [...region.querySelectorAll("[data-key]")].find((each) => each.dataset.key === key);
    if (again) again.focus();
  }
}

/** Where a folder's resources of one kind are listed. */
function folderHref(folderId, kind) {
  return "#/folder/" + encodeURIComponent(folderId) + "/" + kind;
}

/** Where one resource is shown. */
function resourceHref(kind, id) {
  return "#/resource/" + kind + "/" + encodeURIComponent(id);
}

/** The description of a kind the address names, or null for any other name. */
function kindOf(kind) {
  return Object.hasOwn(KINDS, kind) ? KINDS[kind] : null;
}

function link(href, ...children) {
  const anchor = h("a", { href }, ...children);
  // Two links to one place (a folder's name and its count) keep the focus apart.
  anchor.dataset.key = "link " + href + " " + anchor.textContent;
  return anchor;
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { className: "muted" }, empty);
  return h("div", { className: "scroll" },
    h("table", { className: "responsive" },
      h("thead", {}, h("tr", {}, headers.map((header) =>
        h("th", { scope: "col", className: header.number ? "number" : undefined }, header.label ?? header)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, index) => {
        const header = headers[index];
        return h("td", { dataset: { label: header.label ?? header }, className: header.number ? "number" : undefined }, cell);
      }))))));
}

function fields(pairs) {
  return h("dl", { className: "fields" }, pairs.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

// ---------------------------------------------------------------------------- formats

function number(value) {
  return Number(value || 0);
}

function bytes(value) {
  let amount = number(value);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (amount >= 1024 && unit < units.length - 1) {
    amount /= 1024;
    unit += 1;
  }
  return (unit ? amount.toFixed(1) : String(amount)) + " " + units[unit];
}

function seconds(total) {
  const value = Math.max(0, Math.round(total));
  if (value < 60) return value + " s";
  if (value < 3600) return Math.floor(value / 60) + " min " + (value % 60) + " s";
  if (value < 86400) return Math.floor(value / 3600) + " h " + Math.floor((value % 3600) / 60) + " min";
  return Math.floor(value / 86400) + " d " + Math.floor((value % 86400) / 3600) + " h";
}

function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  return h("time", { datetime: timestamp, title: timestamp }, date.toLocaleString());
}

function since(timestamp) {
  return seconds((Date.now() - new Date(timestamp).getTime()) / 1000);
}

function codeName(code) {
  return CODES[code] || "code " + code;
}

function statusBadge(status) {
  return h("span", { className: "status " + status }, status);
}

function operationResult(operation) {
  if (!operation.done) return statusBadge("RUNNING");
  if (operation.error) {
    return h("span", {}, statusBadge(codeName(operation.error.code)), " ", operation.error.message);
  }
  return statusBadge("DONE");
}

/** The id of the resource of `kind` that an operation works on, from its metadata. */
function metadataId(operation, kind) {
  return (operation.metadata || {})[KINDS[kind].idField];
}

// ---------------------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, body) {
    const code = body && typeof body.code === "number" ? body.code : undefined;
    super(body && body.message ? body.message : "HTTP " + status);
    this.status = status;
    this.code = code;
    this.violations = [];
    for (const detail of (body && body.details) || []) {
      for (const violation of detail.fieldViolations || []) this.violations.push(violation);
    }
  }

  toString() {
    return (this.code !== undefined ? codeName(this.code) + ": " : "") + this.message;
  }
}

let tokenPrompt = null;

/** Calls the server: `query` becomes the query string, `body` JSON. Asks for a token when
 * the server answers UNAUTHENTICATED, then tries again. */
async function call(method, path, { query, body, raw } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  for (;;) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, { message: "the server did not answer (" + error.message + ")" });
    }
    if (response.status === 401) {
      // A token given while this call was on its way is tried before asking again.
      if (sessionStorage.getItem(TOKEN_KEY) === token) await askForToken(Boolean(token));
      continue;
    }
    if (raw && response.ok) return response;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = { message: text };
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
}

/** Shows the token dialog until a token is given; one dialog for every waiting call.
 * Closed without a token (Escape), it leaves a button that opens it again. */
function askForToken(refused) {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-error").textContent = refused ? "That token was refused." : "";
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => { tokenGiven = resolve; });
  }
  if (!dialog.open) dialog.showModal();
  input.focus();
  return tokenPrompt;
}

let tokenGiven = null;

function setUpTokenDialog() {
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      document.getElementById("token-error").textContent = "Give a token.";
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = "";
    const resolve = tokenGiven;
    tokenPrompt = tokenGiven = null;
    dialog.close();
    notify("");
    showWho();
    resolve();
  });
  dialog.addEventListener("close", () => {
    if (!tokenPrompt) return;
    const again = h("button", { type: "button", onclick: () => askForToken(false) }, "Give a token");
    notify(["This server needs a token. ", again], true);
  });
}

function notify(message, error = false) {
  const notice = document.getElementById("notice");
  notice.className = error ? "error" : "";
  notice.replaceChildren();
  append(notice, [message]);
}

function failed(error) {
  notify(String(error), true);
}

/** Asks before something that cannot be undone. */
function confirmAction(text, yes) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  ok.textContent = yes;
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.onclick = cancel.onclick = dialog.oncancel = null;
      dialog.close();
      resolve(answer);
    };
    ok.onclick = () => finish(true);
    cancel.onclick = () => finish(false);
    dialog.oncancel = (event) => {
      event.preventDefault();
      finish(false);
    };
    dialog.showModal();
    cancel.focus();
  });
}

/** Shows an API error on the form fields it names, or above the form. */
function showViolations(form, error) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const message of form.querySelectorAll(".field-error")) message.textContent = "";
  const summary = form.querySelector(".form-error");
  summary.textContent = "";
  let placed = false;
  for (const violation of error.violations || []) {
    const name = violation.field.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
    const input = form.elements[name];
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    form.querySelector("#" + input.id + "-error").textContent = violation.description;
    if (!placed) input.focus();
    placed = true;
  }
  if (!placed) summary.textContent = String(error);
}

function field(id, label, input, hint) {
  input.id = id;
  input.name = input.name || id.replace(/^[a-z]+-/, "");
  const described = [id + "-error", hint ? id + "-hint" : null].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  return h("div", { className: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("span", { className: "hint", id: id + "-hint" }, hint) : null,
    h("span", { className: "error field-error", id: id + "-error" }));
}

// ---------------------------------------------------------------------------- live views

let live = null;

/** Calls `refresh(view)` now and every `ms` while the view is shown and the tab visible,
 * one call at a time. `view.stopped` tells a refresh that its view is gone (a navigation
 * came while it waited): it must draw nothing then. `view.stop()` ends the refreshes of
 * this view only (a request it cannot make again until the user changes it). */
function keepFresh(refresh, ms) {
  const view = { stopped: false, timer: 0, busy: false };
  view.stop = () => {
    view.stopped = true;
    clearTimeout(view.timer);
    if (live === view) live = null;
  };
  view.run = async () => {
    clearTimeout(view.timer);
    if (view.stopped || view.busy) return;
    view.busy = true;
    try {
      if (!document.hidden) await refresh(view);
    } catch (error) {
      if (!view.stopped) failed(error);
    } finally {
      view.busy = false;
    }
    if (!view.stopped) view.timer = setTimeout(view.run, ms);
  };
  live = view;
  return view.run();
}

/** Stops the current view's refreshes: a navigation. */
function stopLive() {
  if (live) live.stop();
}

// Back from a hidden tab: refresh at once rather than at the next tick.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && live) live.run();
});

// ---------------------------------------------------------------------------- views

async function foldersView(main, _, query) {
  const region = h("div", { "aria-live": "off" }, h("p", {}, "Loading…"));
  main.append(h("h1", {}, "Folders"), region);
  await keepFresh(async (view) => {
    const page = await call("GET", "/imageplane/v1/folders", { query: { pageToken: query.get("pageToken") } });
    if (view.stopped) return;
    const folders = page.folders || [];
    const rows = folders.map((folder) => [
      link(folderHref(folder.folderId, "compute.image"), h("span", { className: "id" }, folder.folderId)),
      link(folderHref(folder.folderId, "compute.image"), number(folder.images)),
      link(folderHref(folder.folderId, "compute.snapshot"), number(folder.snapshots)),
      link(folderHref(folder.folderId, "compute.disk"), number(folder.disks)),
      link(folderHref(folder.folderId, "baremetal.image"), number(folder.baremetalImages)),
      number(folder.runningOperations)
        ? link("#/operations?folder=" + encodeURIComponent(folder.folderId), number(folder.runningOperations))
        : "0",
    ]);
    const headers = ["Folder", { label: "Images", number: true }, { label: "Snapshots", number: true },
      { label: "Disks", number: true }, { label: "Bare-metal images", number: true },
      { label: "Running operations", number: true }];
    replaceLive(region,
      table(headers, rows, "No folder holds anything yet."),
      h("p", { className: "buttons" },
        query.get("pageToken") ? link("#/", "First page") : null,
        page.nextPageToken ? link("#/?pageToken=" + encodeURIComponent(page.nextPageToken), "Next page") : null,
        link("#/import", "Import an image from a URI")));
  }, REFRESH.folders);
}

async function folderView(main, [folderId, kind = "compute.image"], query) {
  const meta = kindOf(kind);
  if (!meta) return notFound(main);
  const form = h("form", { className: "inline", "aria-label": "List options" },
    field("list-filter", "Filter", h("input", { type: "text", value: query.get("filter") || "", size: 30, placeholder: 'name = "web"' })),
    field("list-orderBy", "Order", h("select", {},
      ["", "name", "name desc", "createdAt", "createdAt desc", "id"].map((order) =>
        h("option", { value: order, selected: (query.get("orderBy") || "") === order }, order || "default (id)")))),
    field("list-pageSize", "Per page", h("select", {},
      ["20", "50", "100"].map((size) => h("option", { value: size, selected: (query.get("pageSize") || "50") === size }, size)))),
    h("div", { className: "buttons" }, h("button", { type: "submit" }, "Show"),
      h("span", { className: "error form-error", role: "alert" })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["filter", "orderBy", "pageSize"]) {
      if (form.elements[name].value) next.set(name, form.elements[name].value);
    }
    location.hash = folderHref(folderId, kind) + (next.size ? "?" + next : "");
  });
  const region = h("div", {}, h("p", {}, "Loading…"));
  main.append(
    h("h1", {}, "Folder ", h("span", { className: "id" }, folderId)),
    h("ul", { className: "tabs", "aria-label": "Kinds" }, Object.entries(KINDS).map(([name, each]) =>
      h("li", {}, h("a", { href: folderHref(folderId, name), "aria-current": name === kind ? "page" : undefined }, each.label)))),
    form, region);
  await keepFresh(async (view) => {
    let page;
    try {
      page = await call("GET", meta.path, {
        query: { folderId, filter: query.get("filter"), orderBy: query.get("orderBy"), pageSize: query.get("pageSize") || "50", pageToken: query.get("pageToken") },
      });
    } catch (error) {
      if (view.stopped) return;
      if (error.code === 3 || error.code === 7) {
        // A bad filter or order, or a folder not the caller's: shown (on its field), and
        // not asked again until changed.
        showViolations(form, error);
        replaceLive(region);
        view.stop();
        return;
      }
      throw error;
    }
    if (view.stopped) return;
    const resources = page[meta.field] || [];
    const rows = resources.map((resource) => [
      link(resourceHref(kind, resource.id), resource.name || h("span", { className: "muted" }, "(no name)")),
      h("span", { className: "id" }, resource.id),
      statusBadge(resource.status),
      when(resource.createdAt),
      resource.storageSize || resource.size ? bytes(resource.storageSize || resource.size) : "",
    ]);
    const next = new URLSearchParams(query);
    next.set("pageToken", page.nextPageToken || "");
    const first = new URLSearchParams(query);
    first.delete("pageToken");
    const base = folderHref(folderId, kind) + "?";
    replaceLive(region,
      table(["Name", "Id", "Status", "Created", "Size"], rows, "No " + meta.label.toLowerCase() + " here."),
      h("p", { className: "buttons" },
        query.get("pageToken") ? link(base + first, "First page") : null,
        page.nextPageToken ? link(base + next, "Next page") : null,
        kind.endsWith("image") ? link("#/import?folder=" + encodeURIComponent(folderId) + "&kind=" + kind, "Import an image into this folder") : null));
  }, REFRESH.folder);
}

function valueOf(value) {
  if (value === null || value === undefined || value === "") return h("span", { className: "muted" }, "—");
  if (typeof value === "object") return h("pre", {}, JSON.stringify(value, null, 2));
  return String(value);
}

async function resourceView(main, [kind, id]) {
  const meta = kindOf(kind);
  if (!meta) return notFound(main);
  const title = h("h1", {}, meta.one + " ", h("span", { className: "id" }, id));
  const actions = h("div", { className: "buttons" });
  const details = h("div", {}, h("p", {}, "Loading…"));
  const timeline = h("div", { "aria-live": "off" });
  main.append(title, actions, details, h("h2", {}, "Operations"), timeline);
  let drawnActions = false;
  let resource = null;

  async function remove() {
    if (!(await confirmAction("Delete " + meta.one.toLowerCase() + " " + (resource.name || resource.id) + "? This cannot be undone.", "Delete"))) return;
    try {
      const operation = await call("DELETE", meta.path + "/" + encodeURIComponent(id));
      notify("Deleting: operation " + operation.id + ".");
    } catch (error) {
      failed(error);
    }
  }

  function copyForm() {
    const copy = COPIES[kind];
    if (!copy) return null;
    // The public catalogue is read-only: a copy of its image goes into a folder of yours.
    const folder = resource.folderId === PUBLIC_FOLDER ? "" : resource.folderId;
    const form = h("form", { className: "inline", "aria-label": copy.label, novalidate: true },
      field("copy-folderId", "Into folder", h("input", { type: "text", value: folder, autocomplete: "off" })),
      field("copy-name", "Name of the new " + KINDS[copy.kind].one.toLowerCase(), h("input", { type: "text", autocomplete: "off" })),
      h("div", { className: "buttons" }, h("button", { type: "submit", className: "secondary" }, copy.label),
        h("span", { className: "error form-error", role: "alert" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const operation = await call("POST", KINDS[copy.kind].path, {
          body: { folderId: form.elements.folderId.value.trim(), name: form.elements.name.value, [copy.source]: id },
        });
        const newId = metadataId(operation, copy.kind);
        const message = "Started operation " + operation.id + ".";
        if (newId) go(resourceHref(copy.kind, newId), message);
        else notify(message);
      } catch (error) {
        showViolations(form, error);
      }
    });
    return form;
  }

  // Once the resource is gone, only its operations are asked for (they are kept).
  let gone = false;
  await keepFresh(async (view) => {
    try {
      if (!gone) resource = await call("GET", meta.path + "/" + encodeURIComponent(id));
    } catch (error) {
      if (error.code !== 5) throw error;
      gone = true;
      resource = null;
    }
    if (view.stopped) return;
    if (gone) {
      replaceLive(details, h("p", { className: "error" }, "This " + meta.one.toLowerCase() + " does not exist (any more)."));
      replaceLive(actions);
    } else {
      title.replaceChildren(meta.one + " ", resource.name || h("span", { className: "id" }, id));
      if (!drawnActions) {
        drawnActions = true;
        replaceLive(actions,
          resource.folderId === PUBLIC_FOLDER ? null
            : h("button", { type: "button", className: "danger", onclick: remove, dataset: { key: "delete" } }, "Delete"),
          link(folderHref(resource.folderId, kind), "Back to the folder"));
        const form = copyForm();
        if (form) actions.after(form);
      }
      const { labels = {}, ...rest } = resource;
      replaceLive(details, fields([
        ...Object.entries(rest).map(([name, value]) => [
          name,
          name === "status" ? statusBadge(value) : name === "folderId"
            ? link(folderHref(value, kind), value) : valueOf(value),
        ]),
        ["labels", Object.keys(labels).length
          ? h("ul", { className: "labels" }, Object.entries(labels).map(([key, value]) => h("li", {}, key + "=" + value)))
          : valueOf("")],
      ]));
    }
    let operations = [];
    let nothingLeft = false;
    try {
      ({ operations = [] } = await call("GET", meta.path + "/" + encodeURIComponent(id) + "/operations", { query: { pageSize: 100 } }));
    } catch (error) {
      if (error.code !== 5) throw error;
      // Neither the resource nor any operation of it: nothing to wait for.
      nothingLeft = gone;
    }
    let progress = {};
    if (operations.some((operation) => !operation.done)) {
      const { running = [] } = await call("GET", "/imageplane/v1/operations", { query: { resourceId: id, pageSize: 10 } });
      progress = Object.fromEntries(running.map((each) => [each.operation.id, each.importProgress]));
    }
    if (view.stopped) return;
    if (nothingLeft) view.stop();
    replaceLive(timeline, operations.length
      ? h("ol", { className: "timeline" }, operations.map((operation) => h("li", {},
        h("strong", {}, operation.description || "Operation"), " ", operationResult(operation), h("br"),
        h("span", { className: "id" }, operation.id), " · started ", when(operation.createdAt),
        operation.done ? [" · ended ", when(operation.modifiedAt)] : null,
        progress[operation.id] ? h("div", {}, progressOf(progress[operation.id])) : null,
        operation.done ? null : h("div", {}, cancelButton(operation)))))
      : h("p", { className: "muted" }, "No operations."));
  }, REFRESH.resource);
}

function cancelButton(operation) {
  return h("button", {
    type: "button", className: "secondary", dataset: { key: "cancel " + operation.id },
    "aria-label": "Cancel operation " + operation.id,
    onclick: async () => {
      if (!(await confirmAction("Cancel operation " + operation.id + " (" + operation.description + ")?", "Cancel operation"))) return;
      try {
        const ended = await call("GET", "/operations/" + encodeURIComponent(operation.id) + ":cancel");
        notify("Operation " + ended.id + " ended: " + (ended.error ? codeName(ended.error.code) : "DONE") + ".");
      } catch (error) {
        failed(error);
      }
    },
  }, "Cancel");
}

function progressOf(progress) {
  const fetched = number(progress.bytesFetched);
  const total = number(progress.bytesTotal);
  const rate = Number(progress.bytesPerSecond || 0);
  const left = number(progress.secondsLeft);
  const text = [
    total ? bytes(fetched) + " of " + bytes(total) + " (" + Math.floor((fetched / total) * 100) + "%)" : bytes(fetched) + " fetched",
    rate ? bytes(rate) + "/s" : null,
    total && left >= 0 ? seconds(left) + " left" : null,
  ].filter(Boolean).join(" · ");
  return h("span", { className: "progress" },
    total ? h("progress", { max: total, value: fetched, "aria-label": "Import progress" }) : null, " ",
    h("span", { className: "progress-text" }, text));
}

function resourceLink(summary) {
  return link(resourceHref(summary.resourceKind, summary.resourceId),
    h("span", { className: "id" }, summary.resourceId));
}

async function operationsView(main, _, query) {
  const folder = query.get("folder") || "";
  const form = h("form", { className: "inline", "aria-label": "Which folder" },
    field("ops-folder", "Folder", h("input", { type: "text", value: folder, placeholder: "every folder", size: 24 })),
    h("div", { className: "buttons" }, h("button", { type: "submit" }, "Show"), h("span", { className: "error form-error", role: "alert" })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = form.elements.folder.value.trim();
    location.hash = "#/operations" + (value ? "?folder=" + encodeURIComponent(value) : "");
  });
  const running = h("section", { "aria-labelledby": "running-title" });
  const ended = h("section", { "aria-labelledby": "ended-title" });
  main.append(h("h1", {}, "Operations"), form, running, ended);
  await keepFresh(async (view) => {
    let answer;
    try {
      answer = await call("GET", "/imageplane/v1/operations", { query: { folderId: folder, pageSize: 50 } });
    } catch (error) {
      if (view.stopped) return;
      if (error.code === 3 || error.code === 7) {
        // A folder that is malformed or not the caller's: not asked again until changed.
        showViolations(form, error);
        view.stop();
        return;
      }
      throw error;
    }
    if (view.stopped) return;
    const now = answer.running || [];
    replaceLive(running, h("h2", { id: "running-title" }, "Running (" + now.length + ")"),
      table(["Operation", "Resource", "Folder", "Running for", "Progress", "Action"], now.map((summary) => [
        h("span", {}, summary.operation.description, h("br"), h("span", { className: "id" }, summary.operation.id)),
        resourceLink(summary),
        link(folderHref(summary.folderId, summary.resourceKind), summary.folderId),
        since(summary.operation.createdAt),
        summary.importProgress ? progressOf(summary.importProgress) : h("span", { className: "muted" }, "—"),
        cancelButton(summary.operation),
      ]), "Nothing is running."));
    replaceLive(ended, h("h2", { id: "ended-title" }, "Recently ended"),
      table(["Operation", "Resource", "Folder", "Ended", "Result"], (answer.ended || []).map((summary) => [
        h("span", {}, summary.operation.description, h("br"), h("span", { className: "id" }, summary.operation.id)),
        resourceLink(summary),
        summary.folderId,
        when(summary.operation.modifiedAt),
        operationResult(summary.operation),
      ]), "No operation has ended yet."));
  }, REFRESH.operations);
}

async function importView(main, _, query) {
  const kind = query.get("kind") === "baremetal.image" ? "baremetal.image" : "compute.image";
  const form = h("form", { className: "stack", "aria-labelledby": "import-title", novalidate: true },
    field("import-kind", "Kind", h("select", {},
      h("option", { value: "compute.image", selected: kind === "compute.image" }, "Compute image"),
      h("option", { value: "baremetal.image", selected: kind === "baremetal.image" }, "Bare-metal image"))),
    field("import-folderId", "Folder", h("input", { type: "text", value: query.get("folder") || "", autocomplete: "off" })),
    field("import-name", "Name", h("input", { type: "text", autocomplete: "off" }), "Lowercase letters, digits and hyphens; starts with a letter."),
    field("import-description", "Description", h("input", { type: "text", autocomplete: "off" })),
    field("import-uri", "URI", h("input", { type: "url", autocomplete: "off", placeholder: "https://example.com/disk.qcow2" }),
      "An http:// or https:// URL of a qcow2, raw, VMDK, VHD(X) or ISO file."),
    h("div", { className: "buttons" }, h("button", { type: "submit" }, "Import"),
      h("span", { className: "error form-error", role: "alert" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.elements.kind.value;
    const body = {};
    for (const name of ["folderId", "name", "description", "uri"]) {
      if (form.elements[name].value) body[name] = form.elements[name].value;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const operation = await call("POST", KINDS[chosen].path, { body });
      go(resourceHref(chosen, metadataId(operation, chosen)),
        "Import started: operation " + operation.id + ".");
    } catch (error) {
      showViolations(form, error);
    } finally {
      button.disabled = false;
    }
  });
  main.append(h("h1", { id: "import-title" }, "Import an image from a URI"), form);
}

/** Sums a counter of the Prometheus text page, over the lines `keep` accepts. */
function counter(page, name, keep = () => true) {
  let total = 0;
  for (const line of page.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (!keep(line)) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return total;
}

async function serverView(main) {
  const facts = h("div", {}, h("p", {}, "Loading…"));
  const rates = h("section", { "aria-labelledby": "rates-title" });
  const admin = h("div", {});
  main.append(h("h1", {}, "Server"), facts, rates, admin);
  let before = null;
  let drawnAdmin = false;
  await keepFresh(async (view) => {
    const server = await call("GET", "/imageplane/v1/server");
    if (view.stopped) return;
    replaceLive(facts, fields([
      ["Version", server.version],
      ["Store", server.store],
      ["Started", when(server.startedAt)],
      ["Up for", since(server.startedAt)],
      ["Authentication", server.authentication ? "on: calls need a token" : "off"],
      ["You are", h("span", { className: "id" }, server.subject)],
      ["Your folders", server.folders && server.folders.length ? server.folders.join(", ") : "every folder"],
      ["Admin API", server.adminEnabled ? (server.admin ? "on" : "on, but not for your token") : "off (start with --enable-admin)"],
    ]));
    const response = await call("GET", "/metrics", { raw: true });
    const page = await response.text();
    if (view.stopped) return;
    const sample = {
      at: performance.now(),
      calls: counter(page, "imageplane_calls_total"),
      errors: counter(page, "imageplane_calls_total", (line) => !line.includes('code="OK"')),
      imports: counter(page, "imageplane_imports_in_flight"),
      running: counter(page, "imageplane_executor_running_operations"),
      fetched: counter(page, "imageplane_import_fetched_bytes_total"),
      connections: counter(page, "imageplane_open_connections"),
    };
    const rate = (name) => before ? ((sample[name] - before[name]) / ((sample.at - before.at) / 1000)).toFixed(1) : "measuring…";
    replaceLive(rates, h("h2", { id: "rates-title" }, "Requests"), fields([
      ["Calls a second", rate("calls")],
      ["Failed calls a second", rate("errors")],
      ["Calls answered in all", sample.calls],
      ["Open connections", sample.connections],
      ["Operations running here", sample.running],
      ["Imports transferring", sample.imports + (before ? " (" + bytes(rate("fetched")) + "/s)" : "")],
    ]), h("p", { className: "hint" }, "From /metrics, between two readings; this console's own calls count too."));
    before = sample;
    if (server.admin) {
      if (!drawnAdmin) {
        drawnAdmin = true;
        drawAdmin(admin, server.workKinds || []);
      }
      await refreshAdmin(admin);
    }
  }, REFRESH.server);
}

function drawAdmin(admin, workKinds) {
  const timingForm = h("form", { className: "stack", "aria-labelledby": "timing-title", novalidate: true },
    field("timing-defaultDelay", "Default delay", h("input", { type: "text", placeholder: "0s" }), "A duration (500ms, 3s, 1m) or manual."),
    field("timing-kinds", "Per kind", h("textarea", { rows: 3, placeholder: "import-image=30s" }),
      "One KIND=DELAY a line. Kinds: " + workKinds.join(", ") + "."),
    h("div", { className: "buttons" }, h("button", { type: "submit" }, "Set delays"), h("span", { className: "error form-error", role: "alert" })));
  timingForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kinds = {};
    for (const line of timingForm.elements.kinds.value.split("\n")) {
      const [kind, delay] = line.split("=").map((part) => part && part.trim());
      if (kind) kinds[kind] = delay || "";
    }
    try {
      await call("PUT", "/imageplane/v1/operationTiming", { body: { defaultDelay: timingForm.elements.defaultDelay.value.trim(), kinds } });
      notify("Delays set; work started from now on takes them.");
      timingForm.dataset.dirty = "";
      await refreshAdmin(admin);
    } catch (error) {
      showViolations(timingForm, error);
    }
  });
  timingForm.addEventListener("input", () => { timingForm.dataset.dirty = "yes"; });

  const faultForm = h("form", { className: "stack", "aria-labelledby": "faults-title", novalidate: true },
    field("fault-targetKind", "Target", h("select", { name: "targetKind" },
      h("option", { value: "method" }, "a method (service/method)"),
      h("option", { value: "operation" }, "an operation's work (kind)"))),
    field("fault-target", "Which", h("input", { type: "text", placeholder: "yandex.cloud.compute.v1.ImageService/Create or import-image" })),
    field("fault-code", "Error code", h("select", {}, CODES.slice(1).map((code) => h("option", { value: code, selected: code === "UNAVAILABLE" }, code)))),
    field("fault-message", "Message", h("input", { type: "text" })),
    field("fault-times", "Times", h("input", { type: "number", min: 0, value: 1 }), "How many calls it fails; 0: every call (or by probability)."),
    field("fault-probability", "Probability", h("input", { type: "number", min: 0, max: 1, step: 0.05, value: 0 })),
    field("fault-delay", "Delay", h("input", { type: "text", placeholder: "e.g. 2s" }), "A wait before the answer (or before the error)."),
    h("div", { className: "buttons" }, h("button", { type: "submit" }, "Add fault"), h("span", { className: "error form-error", role: "alert" })));
  faultForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const elements = faultForm.elements;
    const body = {
      [elements.targetKind.value]: elements.target.value.trim(),
      code: elements.code.value,
      message: elements.message.value,
      times: elements.times.value || "0",
      probability: Number(elements.probability.value || 0),
      delay: elements.delay.value.trim(),
    };
    try {
      const fault = await call("POST", "/imageplane/v1/faults", { body });
      notify("Fault " + fault.id + " added.");
      await refreshAdmin(admin);
    } catch (error) {
      if (error.violations.some((violation) => violation.field === "method" || violation.field === "operation")) {
        error.violations = error.violations.map((violation) => ({ ...violation, field: "target" }));
      }
      showViolations(faultForm, error);
    }
  });

  const reset = h("button", { type: "button", className: "danger", dataset: { key: "reset" }, onclick: async () => {
    if (!(await confirmAction("Reset the server? Every resource, operation and idempotency key goes; the seeds come back.", "Reset"))) return;
    try {
      const counts = await call("POST", "/imageplane/v1/reset", { body: {} });
      notify("Reset: " + number(counts.resourcesRemoved) + " resources and " + number(counts.operationsRemoved) + " operations removed, " + number(counts.resourcesSeeded) + " seeded.");
    } catch (error) {
      failed(error);
    }
  } }, "Reset the server");
  const download = h("button", { type: "button", className: "secondary", dataset: { key: "download" }, onclick: async () => {
    try {
      const response = await call("GET", "/imageplane/v1/state", { raw: true });
      const blob = await response.blob();
      const anchor = h("a", { href: URL.createObjectURL(blob), download: "imageplane-state.jsonl" });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(anchor.href), 10000);
      notify("State snapshot downloaded (" + bytes(blob.size) + ").");
    } catch (error) {
      failed(error);
    }
  } }, "Download a state snapshot");

  admin.append(
    h("h2", { id: "state-title" }, "State"), h("div", { className: "buttons" }, download, reset),
    h("h2", { id: "timing-title" }, "Delays of work"), h("div", { id: "timing-now" }), timingForm,
    h("h2", { id: "faults-title" }, "Faults"), h("div", { id: "faults-now" }), faultForm);
}

async function refreshAdmin(admin) {
  const timing = await call("GET", "/imageplane/v1/operationTiming");
  const kinds = Object.entries(timing.kinds || {});
  replaceLive(admin.querySelector("#timing-now"), fields([
    ["Default", timing.defaultDelay],
    ...kinds.map(([kind, delay]) => [kind, delay]),
  ]));
  const form = admin.querySelector("form[aria-labelledby=timing-title]");
  if (!form.dataset.dirty && !form.contains(document.activeElement)) {
    form.elements.defaultDelay.value = timing.defaultDelay;
    form.elements.kinds.value = kinds.map(([kind, delay]) => kind + "=" + delay).join("\n");
  }
  const { faults = [] } = await call("GET", "/imageplane/v1/faults");
  replaceLive(admin.querySelector("#faults-now"), table(["Id", "Target", "Error", "Fires", "Delay", ""], faults.map((fault) => [
    h("span", { className: "id" }, fault.id),
    fault.method ? "method " + fault.method : "operation " + fault.operation,
    [fault.code, fault.message ? ": " + fault.message : ""],
    number(fault.times) ? number(fault.times) + " more times" : fault.probability ? "with probability " + fault.probability : "always",
    fault.delay || "—",
    h("button", { type: "button", className: "secondary", dataset: { key: "fault " + fault.id }, "aria-label": "Remove fault " + fault.id, onclick: async () => {
      if (!(await confirmAction("Remove fault " + fault.id + "?", "Remove"))) return;
      try {
        await call("DELETE", "/imageplane/v1/faults/" + encodeURIComponent(fault.id));
        notify("Fault " + fault.id + " removed.");
        await refreshAdmin(admin);
      } catch (error) {
        failed(error);
      }
    } }, "Remove"),
  ]), "No fault rules."));
}

function notFound(main) {
  main.append(h("h1", {}, "Not here"), h("p", {}, "The console has no such page. ", link("#/", "Go to the folders")));
}

// ---------------------------------------------------------------------------- routing

const VIEWS = {
  "": foldersView,
  folder: folderView,
  resource: resourceView,
  operations: operationsView,
  import: importView,
  server: serverView,
};

const NAV = { "": "folders", folder: "folders", resource: "folders", operations: "operations", import: "import", server: "server" };

let lastRoute = "";
// A message for the view a navigation leads to (notices are cleared on navigation).
let carried = null;

/** Goes to `hash`, with a notice for the view there. */
function go(hash, message) {
  carried = message;
  location.hash = hash;
}

/** Draws the view the hash names. After a navigation (`focus`), the keyboard focus moves
 * to the view, as a page load would put it. */
async function route({ focus = false } = {}) {
  stopLive();
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [path, search = ""] = hash.split("?");
  let name = "";
  let parts = [];
  try {
    [name = "", ...parts] = path.split("/").map(decodeURIComponent);
  } catch {
    name = "?";
  }
  const query = new URLSearchParams(search);
  const view = Object.hasOwn(VIEWS, name) ? VIEWS[name] : null;
  for (const item of document.querySelectorAll("[data-nav]")) {
    if (item.dataset.nav === NAV[name]) item.setAttribute("aria-current", "page");
    else item.removeAttribute("aria-current");
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  if (hash !== lastRoute) notify(carried || "");
  carried = null;
  lastRoute = hash;
  document.title = (name ? name[0].toUpperCase() + name.slice(1) : "Folders") + " · imageplane console";
  // The view draws its frame at once and then waits for its first answers; the focus
  // moves before that wait.
  const drawn = view ? view(main, parts, query) : notFound(main);
  if (focus) main.focus({ preventScroll: true });
  try {
    await drawn;
  } catch (error) {
    failed(error);
  }
}

async function showWho() {
  try {
    const server = await call("GET", "/imageplane/v1/server");
    document.getElementById("server-line").textContent = "v" + server.version + " · " + server.store;
    document.getElementById("who").textContent = server.authentication ? "Signed in as " + server.subject : "";
    document.getElementById("sign-out").hidden = !server.authentication;
  } catch (error) {
    failed(error);
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});
// A hash that is not a view's (the skip link's #main) moves the focus, not the view.
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/") || location.hash === "") route({ focus: true });
});
setUpTokenDialog();
showWho().then(() => route());
