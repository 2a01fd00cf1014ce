/* Tailored, in Wagtail's page editor: the preview pane's size names the device a preview as an
   audience renders for (tailored.frontend.preview). Wagtail's size buttons set the pane's width
   (mobile 375 px, tablet 768, desktop 1280); this keeps the tl_preview_device cookie on the
   device of the chosen size, before the preview loads, so its first render is already right.
   The picker inside the preview does the same from the pane's own width (and reloads once). */
(function () {
  "use strict";
  var name = document.currentScript.dataset.cookie;
  function sync() {
    var size = document.querySelector('input[name="preview-size"]:checked');
    var width = size && +size.dataset.deviceWidth;
    if (!width) return;
    var device = width < 600 ? "mobile" : width < 1024 ? "tablet" : "desktop";
    document.cookie = name + "=" + device + ";path=/admin/;SameSite=Strict";
  }
  sync();
  document.addEventListener("DOMContentLoaded", sync);
  // Capturing: before the preview panel's own handlers open or resize the pane.
  document.addEventListener("change", sync, true);
  document.addEventListener("click", sync, true);
})();
