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
  let idSuffix = false;  // true for non-staff: the hub adds a random suffix to the id
  let authLabels = {};
  let oauthTemplate = null;

  const $ = function (id) { return document.getElementById(id); };
  const el = Hub.el;
  const Form = window.SchemaForm;
  const domId = Form.domId;
  const humanize = Form.humanize;

  function credentialFields(container, info) {
    const group = el("fieldset", { "data-group": "credentials" });
    group.appendChild(el("legend", {}, "Credentials"));
    group.appendChild(el("p", { class: "help" }, "Stored encrypted; never shown again once saved."));
    info.credential_fields.forEach(function (field) {
      const path = "credentials." + field.name;
      const shell = Form.field(path, field.label, field.required_for.length > 0, field.help);
      const input = el("input", {
        id: domId(path), name: path, "data-path": path, "data-type": "string",
        type: field.secret ? "password" : "text",
        autocomplete: field.secret ? "new-password" : "off", spellcheck: "false",
      });
      if (field.required_for.length) input.dataset.required = "1";
      const wrap = Form.finish(shell, input);
      wrap.dataset.requiredFor = field.required_for.join(" ");
      group.appendChild(wrap);
    });
    container.appendChild(group);
  }

  function basicFields(container, info) {
    const row = el("div", { class: "field-row" });
    const name = Form.field("name", "Name", true, "What people will call it, e.g. “HR (BambooHR)”.");
    const nameInput = el("input", { id: domId("name"), name: "name", "data-path": "name", "data-type": "string",
      "data-required": "1", type: "text", maxlength: "200", autocomplete: "off" });
    row.appendChild(Form.finish(name, nameInput));
    const id = Form.field("id", "Id", true, idSuffix
      ? "Used in URLs and the API; the hub adds “_” and 6 random characters (ids are shared by everyone, so "
        + "yours never reveals anyone else's). Cannot change later."
      : "Used in URLs and the API; cannot change later.");
    const idInput = el("input", { id: domId("id"), name: "id", "data-path": "id", "data-type": "string",
      "data-required": "1", type: "text", pattern: ID_PATTERN, "data-pattern-message": ID_MESSAGE,
      maxlength: idSuffix ? "56" : "63", autocomplete: "off", spellcheck: "false", class: "mono" });
    row.appendChild(Form.finish(id, idInput));
    container.appendChild(row);
    nameInput.addEventListener("input", function () {
      if (idEdited || draftId) return;
      idInput.value = nameInput.value.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_")
        .replace(/^[^a-z]+/, "").slice(0, idSuffix ? 56 : 63).replace(/_+$/, "");
    });
    idInput.addEventListener("input", function () { idEdited = true; });

    const auth = Form.field("auth_type", "Authentication", true);
    const authSelect = el("select", { id: domId("auth_type"), name: "auth_type", "data-path": "auth_type", "data-type": "enum" });
    info.auth_types.forEach(function (type) { authSelect.appendChild(el("option", { value: type }, authLabels[type] || humanize(type))); });
    const authWrap = Form.finish(auth, authSelect);
    authWrap.hidden = info.auth_types.length < 2;
    container.appendChild(authWrap);
    authSelect.addEventListener("change", applyAuthType);
  }

  function scheduleFields(container) {
    const fold = el("details", { class: "advanced" });
    fold.appendChild(el("summary", {}, "Health checks (optional)"));
    const schema = { type: "integer", minimum: 5, default: 60, title: "Check every (seconds)",
      description: "How often the hub checks this integration while it is connected." };
    fold.appendChild(Form.scalar("health_check_interval", "health_check_interval", schema, true));
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
    // A config section named after an auth type (e.g. "oauth2") belongs to that auth type only.
    document.querySelectorAll("#wizard-fields fieldset[data-section]").forEach(function (group) {
      group.hidden = group.dataset.section !== type;
    });
    const credentials = document.querySelector('fieldset[data-group="credentials"]');
    if (credentials) credentials.hidden = !credentials.querySelector(".field:not([hidden])");
    const provider = usesProvider() && oauthTemplate;
    $("oauth-button").hidden = !provider;
    $("oauth-redirect").hidden = !provider;
    $("save-button").hidden = Boolean(provider);
    $("test-button").hidden = Boolean(provider);
  }

  // ---- the form's values and errors ---------------------------------------------------------
  function fields() {
    return $("wizard-fields");
  }

  function clearErrors() {
    Form.clearErrors(fields());
    $("form-error").hidden = true;
    $("form-error").replaceChildren();
  }

  function validateAll() {
    clearErrors();
    return Form.validate(fields());
  }

  /* The settings left at the kind's defaults are not sent: the server fills them in. */
  function collect() {
    return Form.values(fields(), { kind: kind, config: {}, credentials: {} }, ["config."]);
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
      Form.showServerErrors(fields(), answer, $("form-error"));
      return null;
    }
    if (!draftId) {
      draftId = answer.data.id;
      const idInput = $(domId("id"));
      idInput.value = draftId;  // with the hub's suffix, for non-staff
      idInput.readOnly = true;
      $(idInput.id + "-help").textContent = "Saved as " + draftId + ": the id is fixed now.";
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
      const answer = await Hub.runOperation("/api/integrations/" + encodeURIComponent(saved.id) + "/test");
      if (!answer.ok) {
        showTest("fail", (answer.data && answer.data.detail) || "The test could not run.");
      } else if (!Hub.finished(answer.data)) {
        showTest("fail", "The worker did not answer in time; is it running?");
      } else {
        const [resultKind, text] = Hub.describeResult("test", answer.data.result);
        showTest(resultKind, text);
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
        // Starting an authorization is a CSRF-checked POST (a GET only shows where it would go).
        const meta = document.querySelector('meta[name="csrf-token"]');
        const form = el("form", { method: "post", action: oauthTemplate.replace("__id__", encodeURIComponent(saved.id)) });
        form.appendChild(el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: meta ? meta.content : "" }));
        document.body.appendChild(form);
        form.submit();
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
    Form.objectFields(config, info.config_schema, info.config_schema, "config", info.auth_types);
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
      idSuffix = JSON.parse($("id-suffix").textContent) === true;
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
    Form.recheckOnInput($("wizard-fields"));
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
