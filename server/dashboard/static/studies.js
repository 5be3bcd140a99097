// Studies page: live list, and the create form (paste or upload YAML/JSON).
"use strict";
// The project switcher narrows the list (kept in the address, so a reload keeps it)
// and is the project a new study joins when its spec names none.
const switcher = document.getElementById("project-switcher");
const chosen = () => switcher.value;
const query = chosen() ? "?project=" + encodeURIComponent(chosen()) : "";
HPO.refresh("studies-rows", "/ui/studies" + query, "/studies" + query);
switcher.addEventListener("change", () => {
  window.location.search = chosen() ? "?project=" + encodeURIComponent(chosen()) : "";
});

document.getElementById("spec-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) document.getElementById("spec-text").value = await file.text();
});

document.getElementById("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  HPO.showError("create-errors", "");
  const text = document.getElementById("spec-text").value;
  if (!text.trim()) {
    HPO.showError("create-errors", "spec: paste a study spec or choose a file");
    return;
  }
  try {
    // The server parses YAML (a superset of JSON), then validates every field.
    const spec = await HPO.api("/studies/parse", { method: "POST", json: { text } });
    if (chosen() && spec && typeof spec === "object" && !("project" in spec)) spec.project = chosen();
    const study = await HPO.api("/studies", { method: "POST", json: spec });
    window.location.href = "/studies/" + encodeURIComponent(study.name);
  } catch (err) {
    HPO.showError("create-errors", err.message);
  }
});
