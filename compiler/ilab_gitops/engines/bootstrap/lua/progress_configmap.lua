-- Argo CD health check for v1 ConfigMap, installed only for an Environment with
-- commitStatusProgress, as argocd-cm key resource.customizations.health.ConfigMap.
-- Lua 5.1 (gopher-lua): reads the global `obj`; uses the base library only.
--
-- An ilab-gitops progress ConfigMap (label gitops.instructlab.ai/progress: "true") is Healthy
-- with the step's progress ("epoch 3/7, 41 %") as its message, which the step's commit status
-- shows (notifications/argocd.py). Every other ConfigMap is Healthy with no message: the key
-- applies to all ConfigMaps of the Argo CD instance, and a nil result is not "no health" in
-- Argo CD 3 (it becomes an empty status that a sync wave waits on for ever), while Healthy
-- never holds a wave and never worsens an Application's health.
-- A description longer than MAX is dropped, not cut (no string library): Argo CD keeps
-- health messages in the Application's status.
local MAX = 120
local hs = {status = "Healthy", message = ""}
local labels = nil
if obj.metadata ~= nil then
  labels = obj.metadata.labels
end
if labels == nil or labels["gitops.instructlab.ai/progress"] ~= "true" then
  return hs
end
if obj.data ~= nil then
  local text = obj.data["description"]
  if type(text) == "string" and #text <= MAX then
    hs.message = text
  end
end
return hs
