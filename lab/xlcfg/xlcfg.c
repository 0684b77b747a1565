/*
 * xlcfg: Xen's own config parsers (libxlutil, Xen 4.17), for the lab's xl emulator.
 *
 *   xlcfg config <file> [key ...]
 *       Parses <file> exactly as `xl create` does. On a syntax error prints libxlutil's message
 *       (e.g. "t.cfg:1: config parsing error near `x': syntax error, ...") and exits 1.
 *       Otherwise prints one JSON object: each requested key maps to its string value, its
 *       list of strings, or null when the file does not set it.
 *
 *   xlcfg disk <spec>
 *       Parses one disk spec with xlu_disk_parse, as xl does for each disk=[...] entry. On a bad
 *       spec prints libxlutil's message and exits 1; otherwise prints the libxl_device_disk
 *       fields xl records (pdev_path, vdev, format, backend, readwrite, is_cdrom, removable).
 *
 * The emulator itself is TypeScript (lab/xl/); only the parsing must be Xen's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>
#include <libxlutil.h>

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20) printf("\\u%04x", *p);
            else putchar(*p);
        }
    }
    putchar('"');
}

static int cmd_config(const char *file, int nkeys, char **keys) {
    XLU_Config *cfg = xlu_cfg_init(stderr, file);
    if (!cfg) { perror("xlu_cfg_init"); return 2; }
    int rc = xlu_cfg_readfile(cfg, file);
    if (rc) {
        /* libxlutil has already reported syntax errors with file:line; a read error has not. */
        if (rc != EINVAL) fprintf(stderr, "Failed to read config file: %s: %s\n", file, strerror(rc));
        xlu_cfg_destroy(cfg);
        return rc == EINVAL ? 1 : 3;
    }
    putchar('{');
    for (int i = 0; i < nkeys; i++) {
        if (i) putchar(',');
        json_string(keys[i]);
        putchar(':');
        XLU_ConfigList *list;
        int count;
        const char *value;
        if (xlu_cfg_get_list(cfg, keys[i], &list, &count, 1) == 0) {
            putchar('[');
            for (int j = 0; j < count; j++) {
                const char *item = xlu_cfg_get_listitem(list, j);
                if (j) putchar(',');
                if (item) json_string(item);
                else fputs("null", stdout); /* a nested list: not valid in any key xl reads */
            }
            putchar(']');
        } else if (xlu_cfg_get_string(cfg, keys[i], &value, 1) == 0) {
            json_string(value);
        } else {
            fputs("null", stdout);
        }
    }
    puts("}");
    xlu_cfg_destroy(cfg);
    return 0;
}

static int cmd_disk(const char *spec) {
    XLU_Config *cfg = xlu_cfg_init(stderr, "command line");
    if (!cfg) { perror("xlu_cfg_init"); return 2; }
    libxl_device_disk disk;
    libxl_device_disk_init(&disk);
    const char *specs[] = { spec };
    int rc = xlu_disk_parse(cfg, 1, specs, &disk);
    if (rc) {
        libxl_device_disk_dispose(&disk);
        xlu_cfg_destroy(cfg);
        return 1;
    }
    fputs("{\"pdev_path\":", stdout);
    if (disk.pdev_path) json_string(disk.pdev_path); else fputs("null", stdout);
    fputs(",\"vdev\":", stdout);
    if (disk.vdev) json_string(disk.vdev); else fputs("null", stdout);
    fputs(",\"format\":", stdout);
    json_string(libxl_disk_format_to_string(disk.format));
    fputs(",\"backend\":", stdout);
    json_string(libxl_disk_backend_to_string(disk.backend));
    printf(",\"readwrite\":%d,\"is_cdrom\":%d,\"removable\":%d}\n", disk.readwrite, disk.is_cdrom,
           disk.removable);
    libxl_device_disk_dispose(&disk);
    xlu_cfg_destroy(cfg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "config") == 0) return cmd_config(argv[2], argc - 3, argv + 3);
    if (argc == 3 && strcmp(argv[1], "disk") == 0) return cmd_disk(argv[2]);
    fprintf(stderr, "usage: xlcfg config <file> [key ...] | xlcfg disk <spec>\n");
    return 2;
}
