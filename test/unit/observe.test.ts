import { renderXlConfig } from "../../provider/xl/config";
import {
  renderVtpmConfig,
  renderVtpmManagerConfig,
  VTPM_KERNEL,
  VTPMMGR_KERNEL,
} from "../../provider/xl/domains";
import { observeStubdomConfig } from "../../provider/xl/observe";

const uuid = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";

describe("observeStubdomConfig", () => {
  it("reads a rendered vTPM config back into what it was rendered from", () => {
    const text = renderXlConfig(
      renderVtpmConfig({
        name: "web1-vtpm",
        kernel: VTPM_KERNEL,
        memoryMiB: 8,
        image: "/var/lib/xen/vtpm/web1-vtpm.img",
        manager: "vtpmmgr",
        uuid,
        logLevel: "debug",
        maintCmds: false,
      }),
    );
    expect(observeStubdomConfig(text)).toEqual({
      ok: true,
      value: {
        name: "web1-vtpm",
        kernel: VTPM_KERNEL,
        memoryMiB: 8,
        image: "/var/lib/xen/vtpm/web1-vtpm.img",
        options: { loglevel: "debug", maintcmds: "0" },
        vtpm: { backend: "vtpmmgr", uuid },
        iomem: undefined,
        ramdisk: undefined,
      },
    });
  });

  it("reads back the ramdisk a Linux stand-in stub domain boots with", () => {
    const text = renderXlConfig(
      renderVtpmConfig({
        name: "web1-vtpm",
        kernel: VTPM_KERNEL,
        ramdisk: "/usr/lib/xen/boot/vtpm-stubdom-initrd.gz",
        memoryMiB: 128,
        image: "/var/lib/xen/vtpm/web1-vtpm.img",
        manager: "vtpmmgr",
        uuid,
      }),
    );
    expect(text).toContain('ramdisk = "/usr/lib/xen/boot/vtpm-stubdom-initrd.gz"');
    const r = observeStubdomConfig(text);
    expect(r.ok && r.value.ramdisk).toBe("/usr/lib/xen/boot/vtpm-stubdom-initrd.gz");
  });

  it("reads a manager's options, secrets included, whatever their order", () => {
    const text = renderXlConfig(
      renderVtpmManagerConfig({
        name: "vtpmmgr",
        kernel: VTPMMGR_KERNEL,
        memoryMiB: 128,
        image: "/var/lib/xen/vtpm/vtpmmgr.img",
        iomem: ["fed40,5"],
        tpm2: true,
        tpmLocality: 2,
        ownerAuth: "well-known",
      }),
    ).replace(/extra = "(.*)"/, (_, e: string) => `extra = "${e.split(" ").reverse().join(" ")}"`);
    const r = observeStubdomConfig(text);
    expect(r.ok && r.value.options).toEqual({ tpm2: "1", tpmlocality: "2", owner_auth: "well-known" });
    expect(r.ok && r.value.iomem).toEqual(["fed40,5"]);
    expect(r.ok && r.value.memoryMiB).toBe(128);
  });

  it("sees a hand-edited UUID and memory", () => {
    const text = `name="web1-vtpm"\nmemory=32\nkernel="${VTPM_KERNEL}"\ndisk=["file:/var/lib/xen/vtpm/w.img,hda,w"]\nvtpm=["backend=vtpmmgr,uuid=00000000-0000-4000-8000-000000000000"]\n`;
    const r = observeStubdomConfig(text);
    expect(r.ok && r.value).toMatchObject({
      memoryMiB: 32,
      vtpm: { uuid: "00000000-0000-4000-8000-000000000000" },
    });
  });

  it("reports a config that no longer parses instead of throwing", () => {
    expect(observeStubdomConfig('name="x" memory=8\n')).toEqual({
      ok: false,
      problem: expect.stringMatching(/xl config line 1: unexpected "m"/),
    });
  });
});
