//! The one confirmation dialog: `confirm({...})` resolves true on OK, false on Cancel or Esc.

export type ConfirmRequest = { title: string; body: string; ok: string; danger?: boolean };

type Pending = ConfirmRequest & { resolve: (ok: boolean) => void };

export const confirmState = $state<{ current: Pending | null }>({ current: null });

export function confirm(req: ConfirmRequest): Promise<boolean> {
  confirmState.current?.resolve(false);
  return new Promise((resolve) => {
    confirmState.current = { ...req, resolve };
  });
}

export function settle(ok: boolean): void {
  const c = confirmState.current;
  confirmState.current = null;
  c?.resolve(ok);
}
