-- Argo CD health check for trainer.kubeflow.org/v1alpha1 TrainJob (Kubeflow Trainer v2).
-- Installed as argocd-cm key resource.customizations.health.trainer.kubeflow.org_TrainJob.
-- Lua 5.1 (gopher-lua): reads the global `obj`, returns {status = ..., message = ...}.
--
-- Terminal conditions: Complete, Failed. Suspended=True while queued or suspended. Only
-- conditions with status "True" count; Failed is checked first, as in the Flux CEL.
local hs = {}
-- (conditions.lua is inserted here: `truthy` and `message`)
if truthy["Failed"] ~= nil then
  hs.status = "Degraded"
  hs.message = message("Failed", "TrainJob failed")
elseif truthy["Complete"] ~= nil then
  hs.status = "Healthy"
  hs.message = message("Complete", "TrainJob completed")
elseif truthy["Suspended"] ~= nil then
  hs.status = "Suspended"
  hs.message = message("Suspended", "TrainJob is suspended (queued)")
else
  hs.status = "Progressing"
  hs.message = "TrainJob is running"
end
return hs
