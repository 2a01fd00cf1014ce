// The trigger form (Activation → Triggers): show only the fields of the chosen kind. The server
// ignores the other kinds' fields, so without this script the form still works, just longer.
(function () {
  "use strict";

  function wrapperOf(input) {
    return input.closest("li") || input.closest(".w-field__wrapper") || input;
  }

  function showFieldsOf(kind) {
    document.querySelectorAll("[data-tl-trigger-kinds]").forEach(function (input) {
      var kinds = input.getAttribute("data-tl-trigger-kinds").split(" ");
      wrapperOf(input).hidden = kinds.indexOf(kind) === -1;
    });
  }

  function init() {
    var select = document.querySelector("[data-tl-trigger-kind]");
    if (!select) return;
    showFieldsOf(select.value);
    select.addEventListener("change", function () { showFieldsOf(select.value); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
