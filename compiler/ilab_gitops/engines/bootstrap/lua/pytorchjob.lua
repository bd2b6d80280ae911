-- Argo CD health check for kubeflow.org/v1 PyTorchJob (Kubeflow Training Operator v1).
-- Installed as argocd-cm key resource.customizations.health.kubeflow.org_PyTorchJob.
-- Lua 5.1 (gopher-lua): reads the global `obj`, returns {status = ..., message = ...}.
--
-- Conditions written by the operator: Created, Running, Restarting, Succeeded, Suspended,
-- Failed. Only conditions with status "True" count. Failed is checked before Succeeded so
-- that this script and the Flux CEL expressions (failed before current) agree.
local hs = {}
-- (conditions.lua is inserted here: `truthy` and `message`)
if truthy["Failed"] ~= nil then
  hs.status = "Degraded"
  hs.message = message("Failed", "PyTorchJob failed")
elseif truthy["Succeeded"] ~= nil then
  hs.status = "Healthy"
  hs.message = message("Succeeded", "PyTorchJob succeeded")
elseif truthy["Suspended"] ~= nil then
  hs.status = "Suspended"
  hs.message = message("Suspended", "PyTorchJob is suspended (queued)")
elseif truthy["Restarting"] ~= nil then
  hs.status = "Progressing"
  hs.message = "Restarting: " .. message("Restarting", "replicas are being restarted")
elseif truthy["Running"] ~= nil then
  hs.status = "Progressing"
  hs.message = message("Running", "PyTorchJob is running")
elseif truthy["Created"] ~= nil then
  hs.status = "Progressing"
  hs.message = "Created; waiting for replicas to run"
else
  hs.status = "Progressing"
  hs.message = "Waiting for the training operator to report status"
end
return hs
