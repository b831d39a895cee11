import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { TooltipProvider } from "@/components/ui/tooltip";
import { DataGrid } from "./DataGrid";

function renderGrid(props: Partial<React.ComponentProps<typeof DataGrid>> = {}) {
  return render(
    <TooltipProvider>
      <DataGrid
        columns={[
          { name: "id", type: "int4" },
          { name: "body", type: "text" },
        ]}
        rows={[
          [1, "short"],
          [2, "y".repeat(300)],
          [3, null],
        ]}
        testId="grid"
        maxCellChars={40}
        {...props}
      />
    </TooltipProvider>,
  );
}

describe("DataGrid", () => {
  it("renders rows, marks truncated and NULL cells", () => {
    renderGrid();
    const rows = screen.getAllByTestId("grid-row");
    expect(rows).toHaveLength(3);
    const cells = within(rows[1]).getAllByTestId("grid-cell");
    expect(cells[1]).toHaveAttribute("data-truncated", "true");
    expect(cells[1].textContent!.length).toBeLessThan(300);
    const nullCell = within(rows[2]).getAllByTestId("grid-cell")[1];
    expect(nullCell).toHaveAttribute("data-null", "true");
    expect(nullCell).toHaveTextContent("NULL");
  });

  it("copies the full value of a truncated cell", async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    Object.defineProperty(window, "isSecureContext", { value: true, configurable: true });
    renderGrid();
    const row = screen.getAllByTestId("grid-row")[1];
    fireEvent.click(within(row).getAllByTestId("copy-cell")[1]);
    await waitFor(() => expect(writeText).toHaveBeenLastCalledWith("y".repeat(300)));
  });

  it("cycles the sort of a column: asc → desc → none", () => {
    const onSortChange = vi.fn();
    const { rerender } = renderGrid({ onSortChange, sort: null });
    const header = screen.getAllByTestId("grid-header")[0];
    fireEvent.click(within(header).getByRole("button"));
    expect(onSortChange).toHaveBeenLastCalledWith({ column: "id", dir: "asc" });
    rerender(
      <TooltipProvider>
        <DataGrid
          columns={[{ name: "id", type: "int4" }]}
          rows={[[1]]}
          testId="grid"
          onSortChange={onSortChange}
          sort={{ column: "id", dir: "asc" }}
        />
      </TooltipProvider>,
    );
    fireEvent.click(within(screen.getAllByTestId("grid-header")[0]).getByRole("button"));
    expect(onSortChange).toHaveBeenLastCalledWith({ column: "id", dir: "desc" });
  });

  it("shows the empty slot when there are no rows", () => {
    renderGrid({ rows: [], empty: <div>nothing here</div> });
    expect(screen.getByText("nothing here")).toBeInTheDocument();
  });
});
