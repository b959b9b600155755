/* A form rendered from a JSON Schema (as Pydantic writes it: $ref, anyOf with null, enum, defaults),
 * checked in the browser and read back into a nested object; the server's field errors are shown next
 * to their fields. Needs hub.js (Hub.el). Used by the add wizard (wizard.js).
 *
 * Every input carries data-path ("config.oauth2.client_id"), data-type (string, integer, number,
 * boolean, enum, array), data-required="1" and data-default when the schema has them. Its error line
 * is #<input id>-error, tied to the input by aria-describedby.
 *
 * Sections: an object property becomes a fieldset[data-group]. An optional one folds away under
 * <details> and counts only once one of its fields differs from its default. One named in
 * `sections` (e.g. the "oauth2" settings of the oauth2 auth type) is a switchable section
 * (data-section): the caller shows or hides it, and it counts only while shown.
 */
(function () {
  "use strict";

  const el = Hub.el;

  function domId(path) {
    return "f-" + path.replace(/[^a-zA-Z0-9_-]/g, "-");
  }

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

  /* A field's wrapper and label; finish() adds the input, its help and its error line. */
  function field(path, label, required, help) {
    const wrap = el("div", { class: "field", "data-field": path });
    // The "*" is drawn by CSS so the label's text stays the field's name; inputs carry aria-required.
    const lab = el("label", { for: domId(path), class: required ? "is-required" : undefined }, label);
    wrap.appendChild(lab);
    return { wrap: wrap, help: help };
  }

  function finish(shell, input) {
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
  function scalar(path, name, schema, required) {
    const label = labelFor(name, schema);
    const hasDefault = schema.default !== undefined && schema.default !== null;
    const shell = field(path, label, required && !hasDefault, schema.description);
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
    return finish(shell, input);
  }

  function isObject(prop) {
    return prop.type === "object" || Boolean(prop.properties);
  }

  /* The fields of an object schema into container, their paths under prefix ("config"). */
  function objectFields(container, schema, rootSchema, prefix, sections) {
    sections = sections || [];
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
        objectFields(group, prop, rootSchema, path, sections);
        if (sections.indexOf(name) >= 0) {
          group.dataset.section = name;
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
        container.appendChild(scalar(path, name, prop, required.indexOf(name) >= 0 && !prop.nullable));
      }
    });
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

  /* A switchable section counts while it is shown; an optional group once one of its fields was filled in. */
  function groupActive(group) {
    if (group.dataset.section) return !group.hidden;
    if (!group.dataset.optional) return true;
    return Array.prototype.some.call(group.querySelectorAll("[data-path]"), function (input) {
      return input.dataset.type === "boolean" ? !isDefault(input) : input.value.trim() !== "" && !isDefault(input);
    });
  }

  /* Hidden inputs and those of groups that do not count are neither checked nor sent. */
  function inputActive(input) {
    if (!visible(input)) return false;
    let group = input.closest("fieldset[data-group]");
    while (group) {
      if (!groupActive(group)) return false;
      group = group.parentElement && group.parentElement.closest("fieldset[data-group]");
    }
    return true;
  }

  /* The error message for one input, "" when it is fine (or does not count). */
  function check(input) {
    if (!inputActive(input)) return "";
    if (input.dataset.required === "1" && input.value.trim() === "") return "This field is required.";
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

  function setError(input, message) {
    const box = document.getElementById(input.id + "-error");
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

  function inputs(root) {
    return Array.prototype.slice.call(root.querySelectorAll("[data-path]"));
  }

  function clearErrors(root) {
    inputs(root).forEach(function (input) { setError(input, ""); });
  }

  /* Check every input, show the errors, focus the first; true when all are fine. */
  function validate(root) {
    let first = null;
    inputs(root).forEach(function (input) {
      const message = check(input);
      setError(input, message);
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

  /* The active inputs' values into target by their paths. Under each prefix of omitDefaultsUnder
   * ("config."), a value left at the schema's default is not sent, so the server's default applies. */
  function values(root, target, omitDefaultsUnder) {
    inputs(root).forEach(function (input) {
      if (!inputActive(input)) return;
      const path = input.dataset.path;
      const omit = (omitDefaultsUnder || []).some(function (prefix) { return path.indexOf(prefix) === 0; });
      if (omit && isDefault(input)) return;
      const value = readInput(input);
      if (value === undefined) return;
      setPath(target, path, value);
    });
    return target;
  }

  /* Once a field has shown an error, re-check it as the user types. */
  function recheckOnInput(root) {
    root.addEventListener("input", function (e) {
      if (e.target.getAttribute("aria-invalid") === "true") setError(e.target, check(e.target));
    });
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

  /* A 400's field errors ({"config": {"subdomain": ["..."]}}) next to their inputs under root; what
   * names no visible input goes into box (a role=alert element), one line each. */
  function showServerErrors(root, answer, box) {
    const errors = flatten(answer.data || { detail: "HTTP " + answer.status }, "", {});
    const leftovers = [];
    let first = null;
    Object.keys(errors).forEach(function (path) {
      // Pydantic prefixes validator messages with "Value error, ": noise for a person.
      errors[path] = errors[path].map(function (m) { return m.replace(/^Value error, /, ""); });
      let input = root.querySelector('[data-path="' + CSS.escape(path) + '"]');
      if (!input) {
        // An object-level error ("config.config": ["base_url must ..."]) that names one of the
        // object's fields belongs next to that field.
        const group = path.replace(/\.(config|non_field_errors)$/, "");
        const word = (errors[path][0] || "").split(/[\s:]/)[0];
        input = root.querySelector('[data-path="' + CSS.escape(group + "." + word) + '"]');
      }
      if (input && visible(input)) {
        setError(input, errors[path].join(" "));
        if (!first) first = input;
      } else {
        const where = path.replace(/(^|\.)non_field_errors$/, "").replace(/^detail$/, "");
        leftovers.push((where ? where + ": " : "") + errors[path].join(" "));
      }
    });
    if (leftovers.length) {
      box.replaceChildren();
      leftovers.forEach(function (text) { box.appendChild(el("p", {}, text)); });
      box.hidden = false;
      if (!first) box.scrollIntoView({ block: "center" });
    }
    if (first) first.focus();
  }

  window.SchemaForm = {
    domId: domId,
    humanize: humanize,
    field: field,
    finish: finish,
    scalar: scalar,
    objectFields: objectFields,
    check: check,
    setError: setError,
    clearErrors: clearErrors,
    validate: validate,
    values: values,
    recheckOnInput: recheckOnInput,
    showServerErrors: showServerErrors,
  };
})();
