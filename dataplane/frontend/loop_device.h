// SPDX-License-Identifier: Apache-2.0
// Loop devices over a file (the FUSE frontend's volume files): attach, find, detach. The kernel's
// loop driver through /dev/loop-control and the LOOP_* ioctls; sysfs says which file backs which.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tandem::dp::frontend {

// Binds a free loop device to `path` with the given logical block size (512..4096) and returns
// its name ("/dev/loop3"). No autoclear: the device stays until loop_detach, even after the last
// umount. Throws std::system_error naming the file and the step that failed.
std::string loop_attach(const std::string& path, uint32_t block_size);

// The loop device bound to `path` ("/dev/loopN"), if any. With `orphans` also one bound to the
// same file name in a FUSE mount whose server died and whose mount was replaced since (a
// restarted replicator): pass it only when this process replaced such a mount, since the kernel
// no longer says which mount an orphan came from.
std::optional<std::string> loop_find(const std::string& path, bool orphans = false);

// Unbinds the device. Refuses with std::runtime_error while it is in use (mounted, or held open
// exclusively), rather than leaving it to be unbound at the last close as the kernel would.
void loop_detach(const std::string& device);

}  // namespace tandem::dp::frontend
