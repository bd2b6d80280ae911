#!/bin/sh
# Build the four step images from the repository root with podman, or docker when podman is
# absent (`make images`). Tags: $IMAGE_PREFIX/<image>:$IMAGE_TAG (default
# localhost:5001/ilab-gitops/<image>:dev, what environments/kind-dev.yaml names).
# CONTAINER_TOOL=podman|docker picks one explicitly; IMAGES="fetch eval" builds a subset;
# extra arguments go to every build (e.g. --build-arg MAX_JOBS=4).
set -eu

prefix=${IMAGE_PREFIX:-localhost:5001/ilab-gitops}
tag=${IMAGE_TAG:-dev}
images=${IMAGES:-fetch train eval publish sdg}
tool=${CONTAINER_TOOL:-}

if [ -z "$tool" ]; then
    if command -v podman >/dev/null 2>&1; then
        tool=podman
    elif command -v docker >/dev/null 2>&1; then
        tool=docker
    else
        echo "error: neither podman nor docker is on PATH: install one of them to build the step images (or set CONTAINER_TOOL)" >&2
        exit 2
    fi
elif ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: CONTAINER_TOOL=$tool is not on PATH" >&2
    exit 2
fi

for image in $images; do
    if [ ! -f "runtime_images/$image/Containerfile" ]; then
        echo "error: no image named '$image' (runtime_images/$image/Containerfile)" >&2
        exit 2
    fi
done

for image in $images; do
    echo "building $prefix/$image:$tag with $tool"
    "$tool" build -f "runtime_images/$image/Containerfile" -t "$prefix/$image:$tag" "$@" .
done
