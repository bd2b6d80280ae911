-- Argo CD health check override for batch/v1 Job.
-- Installed as argocd-cm key resource.customizations.health.batch_Job.
-- Lua 5.1 (gopher-lua): reads the global `obj`, returns {status = ..., message = ...}.
--
-- The built-in check treats any Suspended condition as complete, even status "False", which
-- Kubernetes writes when a suspended Job resumes (how Kueue starts every admitted Job): the
-- next sync wave would start while the Job still runs. Only conditions with status "True"
-- count here:
--   Failed                -> Degraded
--   Complete              -> Healthy
--   FailureTarget         -> Degraded     (the Job will fail; pods are terminating)
--   SuccessCriteriaMet    -> Progressing  (Complete follows once pods have terminated)
--   Suspended             -> Suspended    (queued; holds the sync wave)
--   otherwise             -> Progressing
local hs = {}
-- (conditions.lua is inserted here: `truthy` and `message`)
if truthy["Failed"] ~= nil then
  hs.status = "Degraded"
  hs.message = message("Failed", "Job failed")
elseif truthy["Complete"] ~= nil then
  hs.status = "Healthy"
  hs.message = message("Complete", "Job completed")
elseif truthy["FailureTarget"] ~= nil then
  hs.status = "Degraded"
  hs.message = "Job is failing: " .. message("FailureTarget", "failure target reached")
elseif truthy["SuccessCriteriaMet"] ~= nil then
  hs.status = "Progressing"
  hs.message = "Success criteria met; waiting for the Complete condition"
elseif truthy["Suspended"] ~= nil then
  hs.status = "Suspended"
  hs.message = message("Suspended", "Job is suspended (queued)")
else
  hs.status = "Progressing"
  local active = 0
  if obj.status ~= nil and obj.status.active ~= nil then
    active = obj.status.active
  end
  if obj.spec ~= nil and obj.spec.suspend == true then
    hs.message = "Job is suspended, waiting for admission"
  elseif active > 0 then
    hs.message = "Job is running (" .. tostring(active) .. " active pods)"
  else
    hs.message = "Waiting for the Job's pods to start"
  end
end
return hs
