/* The segment rule builder (tailored.forms.RuleBuilderWidget).
   The server does all translating between rows and the rule language: this script only shows
   the inputs a row's condition type needs, adds and removes rows, switches between the builder
   and the raw JSON, and posts the inputs to the rule-preview endpoint, which answers with the
   rule's JSON, where it fails, and how many visitors match it now. No build step. */
(function () {
  "use strict";

  function init(root) {
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    var catalog = JSON.parse(root.querySelector("script[type='application/json']").textContent);
    var rows = root.querySelector("[data-rows]");
    var template = root.querySelector("[data-row-template]");
    var modeInput = root.querySelector("[data-mode-input]");
    var json = root.querySelector("[data-json]");
    var jsonError = root.querySelector("[data-json-error]");
    var builderError = root.querySelector("[data-builder-error]");
    var notice = root.querySelector("[data-not-representable]");
    var url = root.dataset.previewUrl;
    var timer = null;
    var latest = 0;

    function input(row, part) { return row.querySelector("[data-input='" + part + "']"); }
    function allRows() { return Array.prototype.slice.call(rows.querySelectorAll("[data-row]")); }
    function mode() { return modeInput.value; }

    function fieldSpec(row) { return catalog.fields[input(row, "field").value]; }
    // A CRM trait row (issue 20): the declared trait's kind, operators and choices.
    function traitSpec(row) { return (catalog.traits || {})[input(row, "trait").value]; }
    function rowSpec(row) {
      var type = input(row, "type").value;
      if (type === "trait") return traitSpec(row);
      return type === "field" ? fieldSpec(row) : null;
    }
    function kindOf(row) {
      var type = input(row, "type").value;
      if (type === "query") return "text";
      if (type !== "field" && type !== "trait") return catalog.number;
      var spec = rowSpec(row);
      return spec ? spec.kind : "text";
    }
    function choicesOf(row) {
      var spec = rowSpec(row);
      if (!spec) return [];
      return spec.kind === "flag" ? catalog.flag : spec.choices;
    }

    // Rebuild a select's options when they depend on something that changed; keep the value.
    function setOptions(select, options, key) {
      if (select.dataset.options === key) return;
      var current = select.value;
      select.textContent = "";
      options.forEach(function (option) { select.appendChild(new Option(option[1], option[0])); });
      if (options.some(function (option) { return option[0] === current; })) select.value = current;
      select.dataset.options = key;
    }

    function refreshRow(row) {
      var type = input(row, "type").value;
      var kind = kindOf(row);
      var trait = type === "trait" ? traitSpec(row) : null;
      if (trait) setOptions(input(row, "op"), trait.ops, "trait:" + input(row, "trait").value);
      else setOptions(input(row, "op"), catalog.ops[kind], kind);
      var choices = choicesOf(row);
      setOptions(input(row, "choice"), choices.map(function (c) { return [c, c]; }), choices.join(","));
      var op = input(row, "op").value;
      var usesChoice = choices.length > 0 && (op === "eq" || op === "ne");
      row.querySelectorAll("[data-types]").forEach(function (part) {
        var shown = part.dataset.types.split(" ").indexOf(type) >= 0;
        if (part.dataset.part === "value") shown = shown && !usesChoice;
        if (part.dataset.part === "choice") shown = shown && usesChoice;
        part.hidden = !shown;
      });
      var spec = rowSpec(row);
      row.querySelector("[data-row-help]").textContent = spec ? spec.help : "";
      // A field's value offers the known values of its kind (countries, regions, categories...).
      var value = input(row, "value");
      if (spec && spec.picker) {
        value.setAttribute("list", root.id + "-list-" + spec.picker);
        value.setAttribute("autocomplete", "off");
        loadPicker(spec.picker);
      } else {
        value.removeAttribute("list");
      }
    }

    // A long list (the ISO regions) comes with the page only when the rule uses it; otherwise
    // it is fetched the first time a row needs it.
    function loadPicker(kind) {
      var list = document.getElementById(root.id + "-list-" + kind);
      if (!list || !list.dataset.src || list.dataset.loaded) return;
      list.dataset.loaded = "1";
      fetch(list.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
        .then(function (response) { return response.ok ? response.json() : { options: [] }; })
        .then(function (data) {
          data.options.forEach(function (option) { list.appendChild(new Option(option[1], option[0])); });
        })
        .catch(function () { delete list.dataset.loaded; });
    }

    // Wagtail's own page chooser; the chosen page's id goes into the row, its title beside it.
    function choosePage(row) {
      if (!window.PageChooserModal) return;
      new window.PageChooserModal(catalog.pageChooserUrl).open({ modelNames: ["wagtailcore.page"] }, function (page) {
        input(row, "page").value = page.id;
        row.querySelector("[data-chosen-page]").textContent = page.title;
        row.dataset.touched = "1";
        schedule();
      });
    }

    function addRow() {
      var next = allRows().reduce(function (max, row) { return Math.max(max, parseInt(row.dataset.index, 10)); }, -1) + 1;
      rows.insertAdjacentHTML("beforeend", template.innerHTML.split("__i__").join(String(next)));
      var row = rows.lastElementChild;
      refreshRow(row);
      input(row, "type").focus();
      schedule();
    }

    function setMode(next) {
      modeInput.value = next;
      root.dataset.mode = next;
      root.querySelectorAll("[data-panel]").forEach(function (panel) { panel.hidden = panel.dataset.panel !== next; });
      root.querySelectorAll("[data-tab]").forEach(function (tab) { tab.setAttribute("aria-selected", String(tab.dataset.tab === next)); });
    }

    function formData() {
      var body = new FormData();
      root.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (el) {
        if ((el.type === "radio" || el.type === "checkbox") && !el.checked) return;
        body.append(el.name, el.value);
      });
      body.append("widget_id", root.id);
      return body;
    }

    function preview(showAll) {
      if (!url) return Promise.resolve(null);
      var token = document.querySelector("input[name='csrfmiddlewaretoken']");
      var id = ++latest;
      return fetch(url, {
        method: "POST",
        body: formData(),
        credentials: "same-origin",
        headers: { "X-CSRFToken": token ? token.value : "", "X-Requested-With": "XMLHttpRequest" },
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (data && id === latest) show(data, showAll);  // an older answer never overwrites a newer one
        return data;
      }).catch(function () { return null; });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(function () { preview(false); }, 400);
    }

    function clearErrors() {
      allRows().forEach(function (row) {
        row.classList.remove("tl-rule-row--error");
        row.querySelector("[data-row-error]").textContent = "";
        row.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
      });
      jsonError.textContent = "";
      builderError.textContent = "";
    }

    // Values no visitor has ever had: a warning on the row (or below the JSON), never an error.
    function showWarnings(warnings) {
      var byRow = {};
      var elsewhere = [];
      (warnings || []).forEach(function (warning) {
        if (warning.row === null || mode() === "json") elsewhere.push(warning.message);
        else (byRow[warning.row] = byRow[warning.row] || []).push(warning.message);
      });
      allRows().forEach(function (row, i) {
        var box = row.querySelector("[data-row-warning]");
        box.textContent = "";
        (byRow[i] || []).forEach(function (message) {
          var line = document.createElement("p");
          line.textContent = message;
          box.appendChild(line);
        });
        box.hidden = !byRow[i];
      });
      var list = root.querySelector("[data-rule-warning-list]");
      list.textContent = "";
      elsewhere.forEach(function (message) {
        var item = document.createElement("li");
        item.textContent = message;
        list.appendChild(item);
      });
      root.querySelector("[data-rule-warnings]").hidden = elsewhere.length === 0;
    }

    // The rule is fine now: drop the error Wagtail rendered at the field on the last save.
    function clearSavedError() {
      var field = root.closest("[data-field]");
      var saved = field && field.querySelector("[data-field-errors]");
      if (!saved) return;
      field.classList.remove("w-field--error");
      saved.textContent = "";
    }

    function show(data, showAll) {
      clearErrors();
      var error = data.error;
      if (!error) clearSavedError();
      if (error && mode() === "json") {
        jsonError.textContent = error.message;
      } else if (error) {
        var row = error.row === null ? null : allRows()[error.row];
        if (!row) {
          builderError.textContent = error.message;
        } else if (showAll || row.dataset.touched) {  // no errors on a row the editor has not filled yet
          row.classList.add("tl-rule-row--error");
          row.querySelector("[data-row-error]").textContent = error.row_message;
          var invalid = error.part && input(row, error.part);
          if (invalid) invalid.setAttribute("aria-invalid", "true");
        }
      }
      showWarnings(data.warnings);
      if (mode() === "builder" && data.json !== null) json.value = data.json;
      if (mode() === "json" && data.representable !== undefined) notice.hidden = data.representable;
      showCount(data);
    }

    function showCount(data) {
      var count = document.querySelector("[data-live-count]");
      var scanned = document.querySelector("[data-live-scanned]");
      if (!count) return;
      if (typeof data.count !== "number") {
        count.textContent = data.error ? "Fix the rule to count visitors" : "Live count unavailable";
        if (scanned) scanned.textContent = "";
        return;
      }
      count.textContent = data.count + (data.count === 1 ? " visitor matches now" : " visitors match now");
      if (scanned) scanned.textContent = "of " + data.scanned + (data.scanned === 1 ? " visitor" : " visitors") + " active in the last 24 hours";
    }

    function showJson() {
      if (mode() === "json") return;
      preview(true).then(function () { setMode("json"); });
    }

    function showBuilder() {
      if (mode() === "builder") return;
      preview(true).then(function (data) {
        if (!data || data.rule === null || data.representable === undefined) return;
        if (!data.representable) { notice.hidden = false; return; }
        rows.innerHTML = data.rows_html;
        allRows().forEach(refreshRow);
        root.querySelector("[data-match][value='" + data.match + "']").checked = true;
        notice.hidden = true;
        setMode("builder");
        preview(true);
      });
    }

    root.addEventListener("change", function (event) {
      var row = event.target.closest("[data-row]");
      if (row) {
        row.dataset.touched = "1";
        refreshRow(row);
      }
      schedule();
    });
    root.addEventListener("input", function (event) {
      var row = event.target.closest("[data-row]");
      if (row) row.dataset.touched = "1";
      schedule();
    });
    root.addEventListener("click", function (event) {
      var target = event.target.closest("button");
      if (!target || !root.contains(target)) return;
      if (target.hasAttribute("data-add-row")) addRow();
      else if (target.hasAttribute("data-choose-page")) choosePage(target.closest("[data-row]"));
      else if (target.hasAttribute("data-remove-row")) { target.closest("[data-row]").remove(); schedule(); }
      else if (target.dataset.tab === "json") showJson();
      else if (target.dataset.tab === "builder") showBuilder();
    });
    document.querySelectorAll("[data-live-count-refresh]").forEach(function (button) {
      button.addEventListener("click", function () { preview(true); });
    });
    allRows().forEach(refreshRow);
  }

  function start() { document.querySelectorAll("[data-rule-builder]").forEach(init); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
