using System.Runtime.InteropServices;

namespace TinyGpt;

/// <summary>
/// Writes a file so that a crash at any moment leaves either the old file or the whole new one: the bytes go to a
/// uniquely named temporary sibling, are flushed to disk, the sibling is renamed over the target, and the directory
/// is flushed so the rename itself survives a power loss.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="contents"/> to <paramref name="path"/> atomically (UTF-8).</summary>
    public static void WriteAllText(string path, string contents) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(contents);
        });

    /// <summary>Writes what <paramref name="write"/> puts into the stream to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        // Unique per writer, so two processes (or a crashed run's leftover) never share a temporary file.
        string temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            FlushDirectory(directory);
        }
        catch
        {
            // Cleaning up must never replace the error that got us here.
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>fsync on the directory: on Linux a rename is durable only once its directory entry is.</summary>
    private static void FlushDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return; // NTFS journals the rename itself
        int fd = Native.open(directory, Native.O_RDONLY | (OperatingSystem.IsLinux() ? Native.O_DIRECTORY_LINUX : 0));
        if (fd < 0)
            throw new IOException($"Cannot open directory '{directory}' to flush it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Native.fsync(fd) != 0)
                throw new IOException($"Cannot flush directory '{directory}' to disk (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = Native.close(fd);
        }
    }

    private static class Native
    {
        public const int O_RDONLY = 0;
        public const int O_DIRECTORY_LINUX = 0x10000;

        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
