/* The add-integration wizard: pick a kind, fill a form generated from the kind's JSON Schema
 * (GET /api/connector-types), check it in the browser, then POST /api/integrations and show the
 * server's field errors next to their fields. "Test connection" saves a disabled draft and tests it;
 * saving enables it and connects (or, for the OAuth2 authorization-code flow, goes to the provider). */
(function () {
  "use strict";

  const ID_PATTERN = "^[a-z][a-z0-9_]{1,62}$";
  const ID_MESSAGE = "Use 2-63 lowercase letters, digits or underscores, starting with a letter.";

  let types = {};
  let kind = null;
  let draftId = null;
  let idEdited = false;
  let authLabels = {};
  let oauthTemplate = null;

  const $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] !== undefined && attrs[name] !== null && attrs[name] !== false) node.setAttribute(name, attrs[name] === true ? "" : attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function domId(path) { return "f-" + path.replace(/[^a-zA-Z0-9_-]/g, "-"); }

  function humanize(name) {
    const text = String(name).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // ---- JSON Schema -> fields -------------------------------------------------------------------
  function resolve(schema, rootSchema) {
    let current = schema || {};
    for (let depth = 0; current.$ref && depth < 10; depth += 1) {
      const ref = current.$ref.replace(/^#\//, "").split("/");
      let target = rootSchema;
      ref.forEach(function (part) { target = target ? target[part] : undefined; });
      const rest = Object.assign({}, current);
      delete rest.$ref;
      // A definition's title is a class name ("RateLimitConfig"); the property's own name reads better.
      const definition = Object.assign({}, target || {});
      delete definition.title;
      current = Object.assign(definition, rest);
    }
    if (current.anyOf) {
      const nonNull = current.anyOf.filter(function (s) { return s.type !== "null"; });
      if (nonNull.length === 1) {
        const outer = Object.assign({}, current);
        delete outer.anyOf;
        return Object.assign({}, resolve(nonNull[0], rootSchema), outer, { nullable: nonNull.length < current.anyOf.length });
      }
    }
    return current;
  }

  /* Pydantic titles every field "Base Url"; an explicit title differs from that and wins. */
  function labelFor(name, schema) {
    const auto = String(name).split("_").map(function (w) { return w.charAt(0).toUpperCase() + w.slice(1); }).join(" ");
    return schema.title && schema.title !== auto ? schema.title : humanize(name);
  }

  function fieldShell(path, label, required, help) {
    const wrap = el("div", { class: "field", "data-field": path });
    // The "*" is drawn by CSS so the label's text stays the field's name; inputs carry aria-required.
    const lab = el("label", { for: domId(path), class: required ? "is-required" : undefined }, label);
    wrap.appendChild(lab);
    return { wrap: wrap, help: help };
  }

  function finishField(shell, input) {
    const id = input.id;
    if (input.dataset.required === "1") input.setAttribute("aria-required", "true");
    const described = [];
    shell.wrap.appendChild(input);
    if (shell.help) {
      shell.wrap.appendChild(el("p", { class: "help", id: id + "-help" }, shell.help));
      described.push(id + "-help");
    }
    shell.wrap.appendChild(el("p", { class: "field-error", id: id + "-error", hidden: true }));
    described.push(id + "-error");
    input.setAttribute("aria-describedby", described.join(" "));
    return shell.wrap;
  }

  /* One input for a scalar schema; the value is read back by readInput(). */
  function scalarField(path, name, schema, required) {
    const label = labelFor(name, schema);
    const hasDefault = schema.default !== undefined && schema.default !== null;
    const shell = fieldShell(path, label, required && !hasDefault, schema.description);
    let input;
    const common = { id: domId(path), name: path, "data-path": path };
    if (schema.enum || schema.const !== undefined) {
      input = el("select", common);
      if (!required || !hasDefault) input.appendChild(el("option", { value: "" }, required ? "Choose…" : "—"));
      (schema.enum || [schema.const]).forEach(function (value) {
        input.appendChild(el("option", { value: String(value), selected: hasDefault && value === schema.default }, humanize(value)));
      });
      input.dataset.type = "enum";
    } else if (schema.type === "boolean") {
      shell.wrap.classList.add("field-check");
      shell.wrap.replaceChildren();
      input = el("input", Object.assign({ type: "checkbox", checked: schema.default === true }, common));
      shell.wrap.appendChild(input);
      shell.wrap.appendChild(el("label", { for: domId(path) }, label));
      input.dataset.type = "boolean";
      shell.wrap.appendChild(el("p", { class: "field-error", id: domId(path) + "-error", hidden: true }));
      input.setAttribute("aria-describedby", domId(path) + "-error");
      input.dataset.default = String(schema.default === true);
      return shell.wrap;
    } else if (schema.type === "integer" || schema.type === "number") {
      input = el("input", Object.assign({ type: "number", inputmode: schema.type === "integer" ? "numeric" : "decimal",
        step: schema.type === "integer" ? "1" : "any" }, common));
      const min = schema.minimum !== undefined ? schema.minimum : schema.exclusiveMinimum;
      if (min !== undefined) input.min = String(min);
      if (schema.exclusiveMinimum !== undefined) input.dataset.exclusiveMinimum = String(schema.exclusiveMinimum);
      if (schema.maximum !== undefined) input.max = String(schema.maximum);
      input.dataset.type = schema.type;
    } else if (schema.type === "array") {
      input = el("input", Object.assign({ type: "text" }, common));
      input.dataset.type = "array";
      shell.help = (shell.help ? shell.help + " " : "") + "Separate values with commas or spaces.";
    } else {
      const url = schema.format === "uri" || /url$/i.test(name);
      input = el("input", Object.assign({ type: url ? "url" : "text", autocomplete: "off", spellcheck: "false" }, common));
      if (schema.minLength) input.minLength = schema.minLength;
      if (schema.maxLength) input.maxLength = schema.maxLength;
      if (schema.pattern) input.pattern = schema.pattern;
      input.dataset.type = "string";
    }
    if (hasDefault && input.tagName === "INPUT") input.value = Array.isArray(schema.default) ? schema.default.join(", ") : String(schema.default);
    if (hasDefault) input.dataset.default = Array.isArray(schema.default) ? schema.default.join(", ") : String(schema.default);
    if (required && !hasDefault) input.dataset.required = "1";
    return finishField(shell, input);
  }

  /* An object schema becomes a fieldset; optional objects fold away under <details>. */
  function isObject(prop) {
    return prop.type === "object" || Boolean(prop.properties);
  }

  function objectFields(container, schema, rootSchema, prefix, authTypes) {
    const required = schema.required || [];
    const names = Object.keys(schema.properties || {});
    // Plain fields first, sections (which fold away when optional) after them.
    names.sort(function (a, b) {
      return Number(isObject(resolve(schema.properties[a], rootSchema))) - Number(isObject(resolve(schema.properties[b], rootSchema)));
    });
    names.forEach(function (name) {
      const path = prefix + "." + name;
      const prop = resolve(schema.properties[name], rootSchema);
      if (isObject(prop)) {
        const group = el("fieldset", { "data-group": path });
        group.appendChild(el("legend", {}, labelFor(name, prop)));
        if (prop.description) group.appendChild(el("p", { class: "help" }, prop.description));
        objectFields(group, prop, rootSchema, path, authTypes);
        if (authTypes.indexOf(name) >= 0) {
          // A section named after an auth type (e.g. "oauth2") belongs to that auth type only.
          group.dataset.authType = name;
          group.dataset.optional = "1";
          container.appendChild(group);
        } else if (required.indexOf(name) >= 0 && !prop.nullable) {
          container.appendChild(group);
        } else {
          group.dataset.optional = "1";
          const fold = el("details", { class: "advanced" });
          fold.appendChild(el("summary", {}, labelFor(name, prop) + " (optional)"));
          fold.appendChild(group);
          container.appendChild(fold);
        }
      } else {
        container.appendChild(scalarField(path, name, prop, required.indexOf(name) >= 0 && !prop.nullable));
      }
    });
  }

  function credentialFields(container, info) {
    const group = el("fieldset", { "data-group": "credentials" });
    group.appendChild(el("legend", {}, "Credentials"));
    group.appendChild(el("p", { class: "help" }, "Stored encrypted; never shown again once saved."));
    info.credential_fields.forEach(function (field) {
      const path = "credentials." + field.name;
      const shell = fieldShell(path, field.label, field.required_for.length > 0, field.help);
      const input = el("input", {
        id: domId(path), name: path, "data-path": path, "data-type": "string",
        type: field.secret ? "password" : "text",
        autocomplete: field.secret ? "new-password" : "off", spellcheck: "false",
      });
      if (field.required_for.length) input.dataset.required = "1";
      const wrap = finishField(shell, input);
      wrap.dataset.requiredFor = field.required_for.join(" ");
      group.appendChild(wrap);
    });
    container.appendChild(group);
  }

  function basicFields(container, info) {
    const row = el("div", { class: "field-row" });
    const name = fieldShell("name", "Name", true, "What people will call it, e.g. “HR (BambooHR)”.");
    const nameInput = el("input", { id: domId("name"), name: "name", "data-path": "name", "data-type": "string",
      "data-required": "1", type: "text", maxlength: "200", autocomplete: "off" });
    row.appendChild(finishField(name, nameInput));
    const id = fieldShell("id", "Id", true, "Used in URLs and the API; cannot change later.");
    const idInput = el("input", { id: domId("id"), name: "id", "data-path": "id", "data-type": "string",
      "data-required": "1", type: "text", pattern: ID_PATTERN, "data-pattern-message": ID_MESSAGE,
      maxlength: "63", autocomplete: "off", spellcheck: "false", class: "mono" });
    row.appendChild(finishField(id, idInput));
    container.appendChild(row);
    nameInput.addEventListener("input", function () {
      if (idEdited || draftId) return;
      idInput.value = nameInput.value.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_")
        .replace(/^[^a-z]+/, "").replace(/_+$/, "").slice(0, 63);
    });
    idInput.addEventListener("input", function () { idEdited = true; });

    const auth = fieldShell("auth_type", "Authentication", true);
    const authSelect = el("select", { id: domId("auth_type"), name: "auth_type", "data-path": "auth_type", "data-type": "enum" });
    info.auth_types.forEach(function (type) { authSelect.appendChild(el("option", { value: type }, authLabels[type] || humanize(type))); });
    const authWrap = finishField(auth, authSelect);
    authWrap.hidden = info.auth_types.length < 2;
    container.appendChild(authWrap);
    authSelect.addEventListener("change", applyAuthType);
  }

  function scheduleFields(container) {
    const fold = el("details", { class: "advanced" });
    fold.appendChild(el("summary", {}, "Health checks (optional)"));
    const schema = { type: "integer", minimum: 5, default: 60, title: "Check every (seconds)",
      description: "How often the hub checks this integration while it is connected." };
    fold.appendChild(scalarField("health_check_interval", "health_check_interval", schema, true));
    container.appendChild(fold);
  }

  function authType() {
    const select = $(domId("auth_type"));
    return select ? select.value : "none";
  }

  function usesProvider() {
    if (authType() !== "oauth2") return false;
    const grant = $(domId("config.oauth2.grant_type"));
    return !grant || grant.value !== "client_credentials";
  }

  /* Show the credential fields and config sections the chosen auth type uses. */
  function applyAuthType() {
    const type = authType();
    document.querySelectorAll("[data-required-for]").forEach(function (wrap) {
      const needed = wrap.dataset.requiredFor.split(" ").filter(Boolean);
      wrap.hidden = needed.length > 0 && needed.indexOf(type) < 0;
    });
    document.querySelectorAll("fieldset[data-auth-type]").forEach(function (group) {
      group.hidden = group.dataset.authType !== type;
    });
    const credentials = document.querySelector('fieldset[data-group="credentials"]');
    if (credentials) credentials.hidden = !credentials.querySelector(".field:not([hidden])");
    const provider = usesProvider() && oauthTemplate;
    $("oauth-button").hidden = !provider;
    $("save-button").hidden = Boolean(provider);
    $("test-button").hidden = Boolean(provider);
  }

  // ---- reading and checking values -----------------------------------------------------------
  function visible(input) {
    return !input.closest("[hidden]");
  }

  function readInput(input) {
    const type = input.dataset.type;
    if (type === "boolean") return input.checked;
    const raw = input.value.trim();
    if (raw === "") return undefined;
    if (type === "integer") return parseInt(raw, 10);
    if (type === "number") return parseFloat(raw);
    if (type === "array") return raw.split(/[\s,]+/).filter(Boolean);
    return type === "string" && input.type === "password" ? input.value : raw;
  }

  function isDefault(input) {
    if (input.dataset.default === undefined) return false;
    return input.dataset.type === "boolean" ? String(input.checked) === input.dataset.default : input.value.trim() === input.dataset.default;
  }

  /* An optional group counts only when one of its fields was filled in (or its auth type is chosen). */
  function groupActive(group) {
    if (group.dataset.authType) return group.dataset.authType === authType();
    if (!group.dataset.optional) return true;
    return Array.prototype.some.call(group.querySelectorAll("[data-path]"), function (input) {
      return input.dataset.type === "boolean" ? !isDefault(input) : input.value.trim() !== "" && !isDefault(input);
    });
  }

  function inputActive(input) {
    if (!visible(input)) return false;
    let group = input.closest("fieldset[data-group]");
    while (group) {
      if (!groupActive(group)) return false;
      group = group.parentElement && group.parentElement.closest("fieldset[data-group]");
    }
    return true;
  }

  function checkInput(input) {
    if (!inputActive(input)) return "";
    const required = input.dataset.required === "1" && !(input.closest("[data-required-for]") || {}).hidden;
    if (required && input.value.trim() === "") return "This field is required.";
    const v = input.validity;
    if (v.badInput) return "Enter a number.";
    if (v.rangeUnderflow) return "Must be at least " + input.min + ".";
    if (v.rangeOverflow) return "Must be at most " + input.max + ".";
    if (v.stepMismatch) return "Enter a whole number.";
    if (input.dataset.exclusiveMinimum !== undefined && input.value !== "" && Number(input.value) <= Number(input.dataset.exclusiveMinimum)) {
      return "Must be greater than " + input.dataset.exclusiveMinimum + ".";
    }
    if (v.typeMismatch) return input.type === "url" ? "Enter a full URL, e.g. https://example.com/path." : input.validationMessage;
    if (v.patternMismatch) return input.dataset.patternMessage || "This value has the wrong format.";
    if (v.tooShort) return "Enter at least " + input.minLength + " characters.";
    if (!v.valid) return input.validationMessage;
    return "";
  }

  function setFieldError(input, message) {
    const box = $(input.id + "-error");
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
    if (message) {
      const fold = input.closest("details");
      if (fold) fold.open = true;
    }
  }

  function inputs() {
    return Array.prototype.slice.call(document.querySelectorAll("#wizard-fields [data-path]"));
  }

  function clearErrors() {
    inputs().forEach(function (input) { setFieldError(input, ""); });
    $("form-error").hidden = true;
    $("form-error").replaceChildren();
  }

  function validateAll() {
    clearErrors();
    let first = null;
    inputs().forEach(function (input) {
      const message = checkInput(input);
      setFieldError(input, message);
      if (message && !first) first = input;
    });
    if (first) first.focus();
    return !first;
  }

  function setPath(target, path, value) {
    const parts = path.split(".");
    let node = target;
    parts.slice(0, -1).forEach(function (part) { node = node[part] = node[part] || {}; });
    node[parts[parts.length - 1]] = value;
  }

  function collect() {
    const payload = { kind: kind, config: {}, credentials: {} };
    inputs().forEach(function (input) {
      if (!inputActive(input) || (input.closest("[data-required-for]") || {}).hidden) return;
      const path = input.dataset.path;
      if (path.indexOf("config.") === 0 && isDefault(input)) return; // keep the kind's default
      const value = readInput(input);
      if (value === undefined) return;
      setPath(payload, path, value);
    });
    return payload;
  }

  // ---- server answers --------------------------------------------------------------------------
  function flatten(data, prefix, out) {
    if (Array.isArray(data) && data.every(function (item) { return typeof item !== "object"; })) {
      out[prefix || "non_field_errors"] = data.map(String);
    } else if (data && typeof data === "object") {
      Object.keys(data).forEach(function (key) { flatten(data[key], prefix ? prefix + "." + key : key, out); });
    } else if (data !== undefined && data !== null) {
      out[prefix || "non_field_errors"] = [String(data)];
    }
    return out;
  }

  function showServerErrors(answer) {
    const errors = flatten(answer.data || { detail: "HTTP " + answer.status }, "", {});
    const leftovers = [];
    let first = null;
    Object.keys(errors).forEach(function (path) {
      // Pydantic prefixes validator messages with "Value error, ": noise for a person.
      errors[path] = errors[path].map(function (m) { return m.replace(/^Value error, /, ""); });
      let input = document.querySelector('#wizard-fields [data-path="' + CSS.escape(path) + '"]');
      if (!input) {
        // An object-level error ("config.config": ["base_url must ..."]) that names one of the
        // object's fields belongs next to that field.
        const group = path.replace(/\.(config|non_field_errors)$/, "");
        const word = (errors[path][0] || "").split(/[\s:]/)[0];
        input = document.querySelector('#wizard-fields [data-path="' + CSS.escape(group + "." + word) + '"]');
      }
      if (input && visible(input)) {
        setFieldError(input, errors[path].join(" "));
        if (!first) first = input;
      } else {
        const where = path.replace(/(^|\.)non_field_errors$/, "").replace(/^detail$/, "");
        leftovers.push((where ? where + ": " : "") + errors[path].join(" "));
      }
    });
    if (leftovers.length) {
      const box = $("form-error");
      box.replaceChildren();
      leftovers.forEach(function (text) { box.appendChild(el("p", {}, text)); });
      box.hidden = false;
      if (!first) box.scrollIntoView({ block: "center" });
    }
    if (first) first.focus();
  }

  function showTest(kindName, text) {
    $("test-result").replaceChildren(el("span", { class: "result result-" + kindName, "data-result": kindName }, text));
  }

  function busy(on) {
    ["test-button", "save-button", "oauth-button", "change-kind"].forEach(function (id) {
      $(id).disabled = on;
      if (on) $(id).setAttribute("aria-busy", "true");
      else $(id).removeAttribute("aria-busy");
    });
  }

  /* Create the integration the first time, then PATCH the same draft. Returns its JSON or null. */
  async function save(enabled) {
    if (!validateAll()) return null;
    const payload = collect();
    payload.enabled = enabled;
    let answer;
    if (!draftId) {
      answer = await Hub.api("POST", "/api/integrations", payload);
    } else {
      delete payload.id;
      delete payload.kind;
      answer = await Hub.api("PATCH", "/api/integrations/" + encodeURIComponent(draftId), payload);
    }
    if (!answer.ok) {
      showServerErrors(answer);
      return null;
    }
    if (!draftId) {
      draftId = answer.data.id;
      const idInput = $(domId("id"));
      idInput.readOnly = true;
      $(idInput.id + "-help").textContent = "Saved: the id is fixed now.";
    }
    return answer.data;
  }

  function markStep(step) {
    document.querySelectorAll(".steps li").forEach(function (li) {
      const n = Number(li.dataset.step);
      li.classList.toggle("current", n === step);
      li.classList.toggle("done", n < step);
    });
  }

  async function onTest() {
    busy(true);
    markStep(3);
    try {
      const saved = await save(false);
      if (!saved) return;
      $("draft-note").hidden = false;
      showTest("pending", "Testing the connection…");
      let answer = await Hub.api("POST", "/api/integrations/" + encodeURIComponent(saved.id) + "/test?wait=10");
      if (answer.ok && answer.status === 202) {
        answer = await Hub.api("GET", "/api/operations/" + encodeURIComponent(answer.data.id) + "?wait=20");
      }
      const result = answer.ok && answer.data ? answer.data.result : null;
      if (!result) {
        showTest("fail", answer.ok ? "The worker did not answer in time; is it running?" : (answer.data && answer.data.detail) || "The test could not run.");
      } else if (result.ok) {
        showTest("ok", "Connection OK · " + Hub.ms(result.latency_ms));
      } else {
        showTest("fail", "Test failed — " + (result.category ? result.category + ": " : "") + (result.message || "no details") +
          (result.latency_ms !== undefined && result.latency_ms !== null ? " · " + Hub.ms(result.latency_ms) : ""));
      }
    } finally {
      busy(false);
    }
  }

  async function onSave(event) {
    if (event) event.preventDefault();
    busy(true);
    markStep(3);
    try {
      const saved = await save(true);
      if (!saved) return;
      if (usesProvider() && oauthTemplate) {
        window.location.assign(oauthTemplate.replace("__id__", encodeURIComponent(saved.id)));
        return;
      }
      await Hub.api("POST", "/api/integrations/" + encodeURIComponent(saved.id) + "/connect");
      window.location.assign("/integrations/" + encodeURIComponent(saved.id));
    } finally {
      busy(false);
    }
  }

  // ---- steps -----------------------------------------------------------------------------------
  function choose(selected, push) {
    const info = types[selected];
    if (!info) return;
    kind = selected;
    draftId = null;
    idEdited = false;
    const fields = $("wizard-fields");
    fields.replaceChildren();
    basicFields(fields, info);
    const config = el("fieldset", { "data-group": "config" });
    config.appendChild(el("legend", {}, info.label + " settings"));
    objectFields(config, info.config_schema, info.config_schema, "config", info.auth_types);
    fields.appendChild(config);
    if (info.credential_fields.length) credentialFields(fields, info);
    scheduleFields(fields);
    applyAuthType();
    clearErrors();
    $("test-result").replaceChildren();
    $("draft-note").hidden = true;
    $("form-title").textContent = "2. " + info.label + " settings";
    $("step-kind").hidden = true;
    $("step-form").hidden = false;
    markStep(2);
    if (push) history.pushState({ kind: selected }, "", "?kind=" + encodeURIComponent(selected));
    $(domId("name")).focus();
  }

  function backToKinds(push) {
    if (draftId && !window.confirm("Leave this form? The draft “" + draftId + "” stays saved, disabled.")) return;
    kind = null;
    $("step-form").hidden = true;
    $("step-kind").hidden = false;
    markStep(1);
    if (push) history.pushState({}, "", location.pathname);
  }

  async function start() {
    try {
      authLabels = JSON.parse($("auth-type-labels").textContent) || {};
      oauthTemplate = JSON.parse($("oauth-start-template").textContent);
    } catch (err) {
      authLabels = {};
    }
    const answer = await Hub.api("GET", "/api/connector-types");
    if (!answer.ok || !Array.isArray(answer.data)) {
      const box = $("kinds-error");
      box.textContent = "Could not load the connector kinds: " + ((answer.data && answer.data.detail) || "HTTP " + answer.status);
      box.hidden = false;
      return;
    }
    answer.data.forEach(function (info) { types[info.kind] = info; });
    document.querySelectorAll("[data-kind]").forEach(function (card) {
      const info = types[card.dataset.kind];
      if (!info) return;
      card.querySelector('[data-role="kind-info"]').textContent =
        humanize(info.family) + " · " + info.auth_types.map(function (t) { return authLabels[t] || humanize(t); }).join(", ");
      card.addEventListener("click", function (e) {
        e.preventDefault();
        choose(card.dataset.kind, true);
      });
    });
    $("wizard-form").addEventListener("submit", onSave);
    $("test-button").addEventListener("click", onTest);
    $("oauth-button").addEventListener("click", function () { onSave(null); });
    $("change-kind").addEventListener("click", function () { backToKinds(true); });
    $("wizard-fields").addEventListener("change", function (e) {
      if (e.target.dataset.path === "config.oauth2.grant_type") applyAuthType();
    });
    // Once a field has shown an error, re-check it as the user types.
    $("wizard-fields").addEventListener("input", function (e) {
      if (e.target.getAttribute("aria-invalid") === "true") setFieldError(e.target, checkInput(e.target));
    });
    window.addEventListener("popstate", function () {
      const selected = new URLSearchParams(location.search).get("kind");
      if (selected && types[selected]) choose(selected, false);
      else backToKinds(false);
    });
    const preselected = $("step-kind").dataset.selected;
    if (preselected) choose(preselected, false);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
